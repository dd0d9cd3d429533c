/**
 * Which failed tasks can be retried with exactly their arguments
 * (src/api/actions/retry.ts, knownArguments), on the real captures: for
 * every task whose argsrepr Celery put in its task-sent event and whose
 * result backend meta holds the real JSON (result_extended), reading the
 * repr gives exactly what the backend has.
 */
import { expect, test } from "bun:test";
import { knownArguments } from "../../src/api/actions/retry.ts";
import { literalToJson } from "../../src/celery/python-literal.ts";
import type { EventRecord } from "../../src/store/queries/tasks.ts";
import { readCapture } from "../fixtures/captures.ts";

const lines = readCapture("celery-5.2-redis-mixed.jsonl");

/** task-sent events (one per message) and result metas, by task id. */
const sent = new Map<string, Record<string, unknown>>();
const metas = new Map<string, string>();
for (const l of lines) {
  if (l.kind !== "pubsub") continue;
  if (l.channel.endsWith("/task.sent")) {
    const e = JSON.parse(Buffer.from(JSON.parse(l.data).body, "base64").toString("utf8"));
    sent.set(e.uuid, e);
  } else if (l.channel.startsWith("celery-task-meta-")) metas.set(l.channel.slice("celery-task-meta-".length), l.data);
}

const event = (fields: Record<string, unknown>): EventRecord => ({
  taskId: String(fields.uuid),
  key: 0n,
  type: "task-sent",
  hostname: String(fields.hostname),
  timestamp: new Date(),
  localReceived: new Date(),
  source: "events",
  fields,
  fieldsInTask: 0,
});

test("argsrepr read as literals gives exactly the result backend's JSON arguments", () => {
  let compared = 0;
  for (const [id, fields] of sent) {
    const meta = metas.get(id);
    if (!meta || !Array.isArray(JSON.parse(meta).args)) continue;
    const fromRepr = knownArguments(null, [event(fields)]);
    const fromBackend = knownArguments(meta, []);
    expect(fromBackend.ok).toBe(true);
    if (!fromRepr.ok || !fromBackend.ok) {
      // Only what saferepr makes ambiguous or cut may be refused.
      expect(fromRepr.ok || /backslash|ending in|control character/.test(fromRepr.reason)).toBe(true);
      continue;
    }
    expect(fromRepr.known.from).toBe("argsrepr");
    expect(JSON.parse(literalToJson(fromRepr.known.args))).toEqual(JSON.parse(literalToJson(fromBackend.known.args)));
    expect(JSON.parse(literalToJson(fromRepr.known.kwargs))).toEqual(JSON.parse(literalToJson(fromBackend.known.kwargs)));
    compared++;
  }
  console.log(`[retry-arguments] ${compared} tasks compared`);
  expect(compared).toBeGreaterThanOrEqual(5);
});

test("without result_extended and with a cut repr: refused, and the reason says both", () => {
  const cut = knownArguments(JSON.stringify({ status: "FAILURE", task_id: "x" }), [event({ uuid: "x", hostname: "h", args: `('${"a".repeat(1021)}...', ...`, kwargs: "{}" })]);
  expect(cut.ok).toBe(false);
  if (!cut.ok) {
    expect(cut.reason).toContain("result_extended is off");
    expect(cut.reason).toContain("ending in ...");
  }
  const none = knownArguments(null, []);
  expect(none.ok).toBe(false);
  if (!none.ok) expect(none.reason).toContain("no task-sent or task-received event");
  // A character Crisper replaced when storing: not the original.
  const cleaned = knownArguments(null, [event({ uuid: "y", hostname: "h", args: "('a\ufffdb',)", kwargs: "{}" })]);
  expect(cleaned.ok).toBe(false);
});
