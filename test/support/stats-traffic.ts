/**
 * Celery task events for the statistics' tests, with the truth they should
 * add up to, computed here from the tasks as generated (not by Crisper's code):
 * successes, failures (no runtime on the wire), retries that run again,
 * tasks revoked because they expired, tasks terminated, tasks whose
 * task-sent was never seen (queue unknown). Seeded, so a failure repeats.
 */
import type { CeleryEvent } from "../../src/celery/event.ts";
import { seeded } from "./random.ts";

export interface TruthTask {
  id: string;
  name: string;
  /** "" when the task-sent (which names the queue) is not part of the traffic. */
  queue: string;
  outcome: "succeeded" | "failed" | "revoked" | "expired";
  /** Unix seconds of the outcome. */
  at: number;
  retries: number;
  runtimeS: number | null;
  waitS: number | null;
}

export interface Traffic {
  events: CeleryEvent[];
  tasks: TruthTask[];
}

/** Milliseconds, as Celery's clocks give them: no instant falls between two microseconds. */
const ms = (t: number) => Math.round(t * 1000) / 1000;

export function statsTraffic(o: { seed: number; tasks: number; start: number; spanS: number; names: readonly string[]; worker?: string }): Traffic {
  const random = seeded(o.seed);
  const worker = o.worker ?? "celery@stats-lab";
  const events: CeleryEvent[] = [];
  const tasks: TruthTask[] = [];
  const event = (type: string, uuid: string, timestamp: number, fields: Record<string, unknown>, hostname = worker): CeleryEvent => ({
    type,
    hostname,
    timestamp: ms(timestamp),
    localReceived: ms(timestamp),
    uuid,
    source: "events",
    fields: { uuid, ...fields },
  });
  for (let i = 0; i < o.tasks; i++) {
    const id = `stats-${o.seed}-${i}`;
    const name = o.names[Math.floor(random() * o.names.length)] ?? "x";
    const sentSeen = random() > 0.1;
    const queue = sentSeen ? (random() > 0.3 ? "celery" : "reports") : "";
    const sent = o.start + random() * o.spanS;
    // Runtimes over five orders of magnitude, as real tasks have.
    const runtime = ms(10 ** (-3 + random() * 4.5));
    const wait = ms(random() * 2);
    const roll = random();
    const outcome = roll < 0.6 ? "succeeded" : roll < 0.75 ? "failed" : roll < 0.85 ? "retried" : roll < 0.93 ? "expired" : "revoked";
    if (sentSeen) events.push(event("task-sent", id, sent, { name, queue, args: "()", kwargs: "{}", retries: 0 }, "gen1@producer"));
    const received = ms(sent + wait / 2);
    events.push(event("task-received", id, received, { name, args: "()", kwargs: "{}", retries: 0 }));
    if (outcome === "expired") {
      const at = ms(received + 0.001);
      events.push(event("task-revoked", id, at, { expired: true, terminated: false, signum: null }));
      tasks.push({ id, name, queue, outcome: "expired", at, retries: 0, runtimeS: null, waitS: null });
      continue;
    }
    const started = ms(sent + wait);
    events.push(event("task-started", id, started, {}));
    if (outcome === "revoked") {
      const at = ms(started + runtime);
      events.push(event("task-revoked", id, at, { expired: false, terminated: true, signum: 15 }));
      tasks.push({ id, name, queue, outcome: "revoked", at, retries: 0, runtimeS: null, waitS: sentSeen ? started - sent : started - received });
      continue;
    }
    if (outcome === "retried") {
      // Celery re-sends the task (received by a worker) before it reports task-retried.
      const retriedAt = ms(started + runtime);
      const received2 = ms(retriedAt + 0.002 + random() * 30);
      events.push(event("task-received", id, ms(retriedAt - 0.001), { name, args: "()", kwargs: "{}", retries: 1 }));
      events.push(event("task-retried", id, retriedAt, { exception: "Retry in 1s", traceback: "" }));
      const started2 = ms(received2 + 0.01);
      const runtime2 = ms(10 ** (-3 + random() * 3));
      const at = ms(started2 + runtime2);
      events.push(event("task-started", id, started2, {}));
      events.push(event("task-succeeded", id, at, { result: "1", runtime: runtime2 }));
      tasks.push({ id, name, queue, outcome: "succeeded", at, retries: 1, runtimeS: runtime2, waitS: started2 - ms(retriedAt - 0.001) });
      continue;
    }
    const at = ms(started + runtime);
    if (outcome === "succeeded") events.push(event("task-succeeded", id, at, { result: "2", runtime }));
    else events.push(event("task-failed", id, at, { exception: "ValueError('no')", traceback: "Traceback…" }));
    tasks.push({ id, name, queue, outcome, at, retries: 0, runtimeS: outcome === "succeeded" ? runtime : at - started, waitS: sentSeen ? started - sent : started - received });
  }
  return { events, tasks };
}

