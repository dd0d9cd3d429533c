/**
 * Plain one-line logs. `once` logs a reason the first time it happens and
 * counts the rest, so a flood of bad messages is one line, not a million.
 */
type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let threshold: Level = "info";
export function setLogLevel(level: Level) {
  threshold = level;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Logs at warn the first time `reason` is seen; returns whether it logged. */
  once(reason: string, msg: string): boolean;
}

const seen = new Set<string>();

export function logger(component: string, sink: (line: string) => void = (l) => console.error(l)): Logger {
  const write = (level: Level, msg: string) => {
    if (ORDER[level] < ORDER[threshold]) return;
    sink(`${new Date().toISOString()} ${level.padEnd(5)} ${component}: ${msg}`);
  };
  return {
    debug: (m) => write("debug", m),
    info: (m) => write("info", m),
    warn: (m) => write("warn", m),
    error: (m) => write("error", m),
    once(reason, msg) {
      const key = `${component}\u0000${reason}`;
      if (seen.has(key)) return false;
      seen.add(key);
      write("warn", `${msg} (logged once)`);
      return true;
    },
  };
}
