/**
 * Keeps Crisper's background loops (the collector's writer, the queue
 * sampler, the detector, the inspector, the Slack poster) running whatever
 * one of their passes throws. A monitor that dies silently is worse than
 * none: an unexpected error is logged with its stack (once per loop and
 * message, then only counted in crisper_loop_errors_total{loop}), and the
 * loop goes on. Expected failures (the database or the broker away) are each
 * loop's own business; this is for the rest.
 */
import { errorText, type Logger } from "./log.ts";
import { loopMetrics } from "./metrics.ts";

const reported = new Set<string>();
const MAX_REPORTED = 1000;

/** Logs an unexpected error with its stack the first time this loop throws this message; counts it always. */
export function reportUnexpected(loop: string, e: unknown, log: Logger, what = "unexpected error"): void {
  loopMetrics.errors.inc({ loop });
  const message = e instanceof Error ? e.message : String(e);
  const key = `${loop}\u0000${message.slice(0, 200)}`;
  if (reported.has(key)) return;
  if (reported.size < MAX_REPORTED) reported.add(key);
  // The reason as errorText gives it (never a failed query's parameters), then where it was thrown.
  const frames = e instanceof Error && e.stack ? e.stack.split("\n").filter((l) => l.trimStart().startsWith("at ")).slice(0, 10) : [];
  log.error(`${loop}: ${what}, carrying on (logged once; counted in crisper_loop_errors_total{loop="${loop}"}): ${clip([errorText(e), ...frames].join("\n"))}`);
}

const FIRST_PAUSE_MS = 1000;
const MAX_PAUSE_MS = 30_000;
/** A loop that ran this long before failing starts its pauses over. */
const HEALTHY_RUN_MS = 60_000;

/**
 * Runs `body` until it returns. When it throws, reports the error and runs it
 * again after a pause (1 s, doubling to 30 s while it keeps failing at once).
 * Resolves when `body` returns, or when `stopping()` says so after a failure.
 */
export async function superviseLoop(
  loop: string,
  body: () => Promise<void>,
  o: { log: Logger; stopping: () => boolean; firstPauseMs?: number },
): Promise<void> {
  const first = o.firstPauseMs ?? FIRST_PAUSE_MS;
  let pause = first;
  for (;;) {
    const started = Date.now();
    try {
      await body();
      return;
    } catch (e) {
      reportUnexpected(loop, e, o.log, "loop failed; restarting it");
      if (o.stopping()) return;
      if (Date.now() - started > HEALTHY_RUN_MS) pause = first;
      await Bun.sleep(pause);
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
      if (o.stopping()) return;
    }
  }
}

/** Runs one pass, reporting anything it throws; resolves false if it threw. For loops that schedule themselves. */
export async function guarded(loop: string, pass: () => Promise<void>, log: Logger): Promise<boolean> {
  try {
    await pass();
    return true;
  } catch (e) {
    reportUnexpected(loop, e, log);
    return false;
  }
}

export interface Periodic {
  /** Runs a pass now (unless one is running), as the interval would. */
  runNow(): Promise<void>;
  /** No more passes; resolves once the running one (if any) ends. */
  stop(): Promise<void>;
}

/**
 * Runs `pass` every `intervalMs`, never two at once (a slow pass makes the
 * next wait, it does not pile up). A pass that throws is reported; the next
 * runs on time.
 */
export function every(loop: string, intervalMs: number, pass: () => Promise<void>, log: Logger): Periodic {
  let running: Promise<void> | null = null;
  let stopped = false;
  const runNow = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    running ??= guarded(loop, pass, log).then(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => void runNow(), intervalMs);
  return {
    runNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * The last resort, for the composition root: an exception or rejection that
 * nothing caught is logged with its stack, and the process keeps serving
 * (Bun would otherwise exit, taking the web pages and the bot with it). The
 * cause is a bug to fix; the log line says where.
 */
export function keepServingOnUncaughtErrors(log: Logger): void {
  process.on("uncaughtException", (e) => reportUnexpected("process", e, log, "uncaught exception"));
  process.on("unhandledRejection", (e) => reportUnexpected("process", e, log, "unhandled promise rejection"));
}

function clip(text: string): string {
  return text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
}
