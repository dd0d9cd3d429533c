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

/** Longest message a log line carries: a wire value or a query cannot flood the log. */
const MAX_MESSAGE_CHARS = 2000;

/**
 * One log line per call, whatever the message holds. Hostnames, task names
 * and error texts come from the wire: a newline in one must not forge a
 * second log line, and an escape sequence must not drive the terminal.
 */
export function logSafe(msg: string): string {
  // Control characters (C0, DEL, C1) and the two Unicode line separators.
  const escaped = msg.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  if (escaped.length <= MAX_MESSAGE_CHARS) return escaped;
  return `${escaped.slice(0, MAX_MESSAGE_CHARS)}… (${escaped.length - MAX_MESSAGE_CHARS} more characters)`;
}

/**
 * What an error says, for a log line. drizzle wraps a failed statement as
 * "Failed query: <sql>\nparams: <every parameter>", and a detector's
 * parameters can be thousands of task ids: log the driver's reason and the
 * statement's start, never the parameters.
 */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (e.message.startsWith("Failed query:")) {
    const statement = e.message.slice("Failed query:".length).split("\nparams:")[0]?.trim() ?? "";
    const reason = e.cause instanceof Error ? e.cause.message : "query failed";
    return `${reason} (in: ${statement.slice(0, 120)}${statement.length > 120 ? "…" : ""})`;
  }
  return e.message;
}

export function logger(component: string, sink: (line: string) => void = (l) => console.error(l)): Logger {
  const write = (level: Level, msg: string) => {
    if (ORDER[level] < ORDER[threshold]) return;
    sink(`${new Date().toISOString()} ${level.padEnd(5)} ${component}: ${logSafe(msg)}`);
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
