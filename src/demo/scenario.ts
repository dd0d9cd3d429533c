/**
 * The demo's cluster and what happens to it: steady traffic, and every
 * silent failure Crisper exists to catch, staged on a loop (one cycle every
 * CYCLE_S seconds, the first within a minute and a half of the start):
 *
 *  +2 s   a late-acknowledged ledger export starts on a reports worker; it runs
 *         longer than the visibility timeout (visibility_timeout_risk)
 *  +6 s   a burst of slow image work on the `celery` queue
 *  +9 s   worker-2 is SIGKILLed while running two of them and holding
 *         prefetched ones (worker_offline, task_lost, prefetched_stranded)
 *  +20 s  Celery Beat stops (beat_missed for both schedules)
 *  +24 s  a third reports worker starts, restores the export's message (past
 *         the 20 s visibility timeout) and runs it again (duplicate_execution)
 *  +25 s  a reconciliation hangs on a lock (task_stalled)
 *  +30 s  the month-end invoice rush: more than the reports workers drain (queue_backlog)
 *  +41 s  payment reminders sent with expires=2 wait behind the rush and
 *         are discarded unrun when a worker reaches them (tasks_expired)
 *  +60 s  worker-2 is restarted by its supervisor; the extra reports worker stops
 *  +65 s  Beat is back; +72 s the rush ends; +95 s the reconciliation gets its lock
 *
 * Times are after the cycle's start; the first cycle starts 5 s in.
 */
import type { DemoServer } from "./memory-broker.ts";
import { Beat, Producer, Registry, Worker } from "./cluster.ts";
import { BEAT_SCHEDULE, everydayTask, hangingTask, invoiceTask, longExport, reminderTask, slowImageTask } from "./tasks.ts";
import type { Logger } from "../log.ts";

export const CYCLE_S = 150;

/** The settings the scenario is timed against; the demo hands Crisper the same (src/demo/command.ts). */
export const DEMO_TIMING = {
  visibilityTimeoutS: 20,
  /** The hanging reconciliation counts as stalled after this long. */
  stallAfterS: 20,
};

export interface DemoCluster {
  stop(): Promise<void>;
}

export function startDemoCluster(server: DemoServer, log: Logger): DemoCluster {
  const registry = new Registry();
  const vt = DEMO_TIMING.visibilityTimeoutS;
  const web = new Producer(server, registry, "gen2317@shop-web-1");
  const beat = new Beat(new Producer(server, registry, "gen1088@shop-scheduler"), BEAT_SCHEDULE);
  const worker = (hostname: string, queues: string[], concurrency: number, prefetchExtra: number, sendTaskEvents = false) =>
    new Worker(server, registry, { hostname, queues, concurrency, prefetchExtra, visibilityTimeoutS: vt, sendTaskEvents });
  const workers = [
    worker("worker-1@shop-app-1", ["celery"], 2, 2),
    worker("worker-2@shop-app-2", ["celery"], 2, 2),
    worker("reports-1@shop-reports-1", ["reports"], 2, 0),
    worker("reports-2@shop-reports-2", ["reports"], 2, 0),
  ];
  const victim = workers[1] as Worker;
  // Scaled up for the month-end rush, started with `-E`.
  const extra = worker("reports-3@shop-reports-3", ["reports"], 2, 0, true);

  const timers = new Set<ReturnType<typeof setTimeout>>();
  const at = (s: number, what: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      what();
    }, s * 1000);
    timers.add(t);
  };
  const repeat = (everyS: number, what: () => void) => {
    const t = setInterval(what, everyS * 1000);
    timers.add(t);
    return () => {
      clearInterval(t);
      timers.delete(t);
    };
  };

  function cycle(n: number) {
    log.info(`cycle ${n}: staging a duplicate, a dead worker, Beat stopping, a stalled task, a backlog and expiring tasks`);
    // 30 s: past the visibility timeout, and over before the next worker start-up restores it again.
    at(2, () => web.send(longExport(30)));
    at(6, () => {
      for (let i = 0; i < 8; i++) web.send(slowImageTask());
    });
    // Killed while it holds both running and prefetched messages (a second or two more if it has not taken them yet).
    const kill = (tries: number) => {
      const h = victim.holding();
      if ((h.active > 0 && h.reserved > 0) || tries === 0) {
        log.info(`SIGKILL ${victim.hostname} (running ${h.active}, prefetched ${h.reserved})`);
        victim.kill();
      } else at(0.5, () => kill(tries - 1));
    };
    at(9, () => kill(8));
    at(20, () => {
      log.info("Celery Beat stops");
      beat.stop();
    });
    at(25, () => web.send(hangingTask(70)));
    // Started after the export's delivery is older than the visibility timeout: kombu restores it at start-up.
    at(2 + vt + 2, () => extra.start());
    at(30, () => {
      const stopRush = repeat(0.25, () => web.send(invoiceTask()));
      at(42, stopRush);
    });
    at(41, () => {
      for (let i = 0; i < 4; i++) web.send(reminderTask());
    });
    at(60, () => {
      victim.start();
      void extra.shutdown();
    });
    at(65, () => beat.start());
    at(CYCLE_S, () => cycle(n + 1));
  }

  for (const w of workers) w.start();
  // Producers start once Crisper has had a moment to switch task events on.
  at(3, () => {
    beat.start();
    repeat(0.5, () => {
      if (Math.random() < 0.8) web.send(everydayTask());
    });
  });
  at(5, () => cycle(1));

  return {
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      beat.stop();
      for (const w of [...workers, extra]) w.kill();
    },
  };
}
