/**
 * Keeps the statistics current: a rollup pass (rollup.ts) every few seconds
 * in the process that collects, supervised so that an unexpected error is
 * logged and the loop goes on. The marks wait in the database meanwhile, so
 * a pass that fails (the database away) loses nothing: the next one does it.
 */
import { errorText, type Logger } from "../log.ts";
import { type Database, isDatabaseUnavailable } from "../store/database.ts";
import { superviseLoop } from "../supervise.ts";
import { rollUpStatistics } from "./rollup.ts";

/**
 * How often a pass runs. A minute's statistics appear once the minute is
 * over (RollupOptions.settledBefore): up to a minute and this much after
 * its first task (plus a pass's own time).
 */
export const ROLLUP_INTERVAL_MS = 5000;

export interface StatisticsRollup {
  stop(): Promise<void>;
}

export function startStatisticsRollup(o: {
  database: Database;
  log: Logger;
  intervalMs?: number;
  /** See RollupOptions.frozenBefore: when tasks are deleted after TASK_RETENTION, now minus that. */
  frozenBefore?: () => Date | undefined;
}): StatisticsRollup {
  const interval = o.intervalMs ?? ROLLUP_INTERVAL_MS;
  let stopping = false;
  let wake: (() => void) | null = null;
  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, interval);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const running = superviseLoop(
    "statistics",
    async () => {
      while (!stopping) {
        try {
          await rollUpStatistics(o.database, { frozenBefore: o.frozenBefore?.(), settledBefore: new Date() });
        } catch (e) {
          if (!isDatabaseUnavailable(e)) throw e;
          o.log.once(`statistics:${errorText(e)}`, `statistics not rolled up, the database is not answering (${errorText(e)}); retrying`);
        }
        await pause();
      }
    },
    { log: o.log, stopping: () => stopping },
  );
  return {
    async stop() {
      stopping = true;
      wake?.();
      await running;
    },
  };
}
