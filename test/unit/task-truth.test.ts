/**
 * Replaying real Celery captures gives each task the state, retries, result
 * or exception the workers really produced, in any order, any number of times.
 */
import { describe, expect, test } from "bun:test";
import type { CeleryEvent } from "../../src/celery/event.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { executionsFromEvents } from "../../src/state/executions.ts";
import { type TaskPatch, mergeTaskPatch, taskPatchesFromEvents } from "../../src/state/task-patch.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";

const mixed = captureMessages(readCapture("celery-5.2-redis-mixed.jsonl"));
const faults = captureMessages(readCapture("celery-5.2-redis-faults.jsonl"));

function decodeAll(messages = mixed): CeleryEvent[] {
  return messages.flatMap((m) => decodeRawMessage(m).events);
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const byName = (tasks: Map<string, TaskPatch>, name: string) => [...tasks.values()].filter((t) => t.name === name);
const one = (tasks: Map<string, TaskPatch>, name: string): TaskPatch => {
  const found = byName(tasks, name);
  expect(found).toHaveLength(1);
  return found[0] as TaskPatch;
};

describe("decoding the captures", () => {
  test("every event and result message in both captures decodes without error", () => {
    for (const m of [...mixed, ...faults]) {
      const d = decodeRawMessage(m);
      expect(d.errors).toEqual([]);
      expect(d.events.length).toBeGreaterThan(0);
    }
  });

  test("task.multi carries a list and every event has its Celery fields", () => {
    const events = decodeAll([...mixed, ...faults]);
    expect(events.length).toBeGreaterThan(100);
    for (const e of events) {
      expect(e.hostname.length).toBeGreaterThan(0);
      expect(e.timestamp).toBeGreaterThan(1.7e9);
      if (e.type.startsWith("task-")) expect(e.uuid).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe("task truth from the mixed capture", () => {
  const tasks = taskPatchesFromEvents(decodeAll());

  test("successes carry their result, runtime and worker", () => {
    const adds = byName(tasks, "labapp.add").filter((t) => t.state === "SUCCESS");
    expect(adds.map((t) => t.result).sort()).toEqual(["2", "4", "6"]);
    for (const t of adds) {
      expect(t.worker).toBe("cap1@lab");
      expect(t.runtime).toBeGreaterThan(0);
      expect(t.startedAt).not.toBeNull();
      expect(t.finishedAt).toBeGreaterThanOrEqual(t.startedAt ?? Infinity);
    }
  });

  test("a failure keeps its exception and traceback", () => {
    const boom = one(tasks, "labapp.boom");
    expect(boom.state).toBe("FAILURE");
    expect(boom.exception).toBe("ValueError('card declined')");
    expect(boom.traceback).toContain("ValueError: card declined");
    expect(boom.args).toBe("('card declined',)");
  });

  test("a task retried twice then failing ends FAILURE with retries 2", () => {
    const flaky = one(tasks, "labapp.flaky");
    expect(flaky.state).toBe("FAILURE");
    expect(flaky.retries).toBe(2);
    expect(flaky.exception).toBe("RuntimeError('flaky dependency')");
  });

  test("a killed pool process is a WorkerLostError failure, not ExceptionWithTraceback()", () => {
    const suicide = one(tasks, "labapp.suicide");
    expect(suicide.state).toBe("FAILURE");
    expect(suicide.exception).toStartWith("WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)");
  });

  test("a terminated task is REVOKED", () => {
    const long = byName(tasks, "labapp.sleepy").find((t) => t.args === "(30,)");
    expect(long?.state).toBe("REVOKED");
  });

  test("hostile arguments and results are kept verbatim (escaping is the views' job)", () => {
    const echo = one(tasks, "labapp.echo");
    expect(echo.state).toBe("SUCCESS");
    expect(echo.args).toContain("<script>alert(1)</script>");
    expect(echo.result).toContain("héllo ☃");
  });

  test("queue and routing key come from task-sent", () => {
    const report = byName(tasks, "labapp.sleepy").find((t) => t.args === "(1,)");
    expect(report?.queue).toBe("reports");
    expect(report?.state).toBe("SUCCESS");
  });

  test("a countdown task revoked before its ETA stays RECEIVED (the worker never ran it)", () => {
    const eta = byName(tasks, "labapp.add").find((t) => t.args === "(5, 5)");
    expect(eta?.state).toBe("RECEIVED");
    expect(eta?.eta).toStartWith("2026-");
  });

  test("replayed twice, or shuffled, the result is identical", () => {
    const events = decodeAll();
    const base = JSON.stringify([...taskPatchesFromEvents(events)].sort());
    expect(JSON.stringify([...taskPatchesFromEvents([...events, ...events])].sort())).toBe(base);
    for (const seed of [1, 2, 3, 42, 1234]) {
      expect(JSON.stringify([...taskPatchesFromEvents(shuffled(events, seed))].sort())).toBe(base);
    }
  });

  test("merging is commutative and idempotent patch by patch", () => {
    const patches = [...taskPatchesFromEvents(decodeAll()).values()];
    for (const a of patches) {
      expect(mergeTaskPatch(a, a)).toEqual(a);
    }
  });

  test("the retried task shows three executions, one per retry count", () => {
    const events = decodeAll().filter((e) => e.uuid === one(tasks, "labapp.flaky").id);
    const runs = executionsFromEvents(events);
    expect(runs.map((r) => [r.retries, r.state])).toEqual([
      [0, "RETRY"],
      [1, "RETRY"],
      [2, "FAILURE"],
    ]);
  });
});

describe("the faults capture", () => {
  const events = decodeAll(faults);
  const tasks = taskPatchesFromEvents(events);

  test("the redelivered task shows two executions on two workers at retries 0", () => {
    const dup = tasks.get("7c50fa48-dbd7-42d5-a155-777ec02a207c");
    expect(dup?.state).toBe("SUCCESS");
    const runs = executionsFromEvents(events.filter((e) => e.uuid === dup?.id));
    expect(runs.map((r) => [r.worker, r.retries, r.state])).toEqual([
      ["dup1@lab", 0, "SUCCESS"],
      ["dup2@lab", 0, "SUCCESS"],
    ]);
  });

  test("the task whose worker was SIGKILLed stays STARTED", () => {
    expect(tasks.get("de7426b0-fe44-44de-887d-91851f29cfd3")?.state).toBe("STARTED");
  });
});
