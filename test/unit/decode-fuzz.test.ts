/**
 * The decoder, fuzzed in-process: mutations of the real captures (flipped
 * bytes, cuts, deleted fields, swapped types, hostile keys, nested junk). It
 * never throws, and whatever it keeps is an event the store can hold:
 * storable text, sane times, integers where the store has integer columns,
 * fields bounded and without a prototype. Seeded: the seed is printed, and
 * FUZZ_SEED=<seed> replays a run.
 */
import { expect, test } from "bun:test";
import { EARLIEST_TIMESTAMP, LIMITS, MAX_CLOCK_AHEAD_S, isInt32 } from "../../src/celery/bounds.ts";
import type { CeleryEvent, Decoded } from "../../src/celery/event.ts";
import { isTaskEventType, isWorkerEventType } from "../../src/celery/states.ts";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { type FuzzedMessage, WireFuzzer, fuzzSeed } from "../support/hostile-wire.ts";

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS) || 50_000;
const captures = [...captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")), ...captureMessages(readCapture("celery-5.2-redis-faults.jsonl"))];

/**
 * An escape in JSON text: after an even number of backslashes (`\\ud800` is a
 * backslash and the letters ud800, which PostgreSQL stores happily).
 */
const ESCAPED_NUL = /(?:^|[^\\])(?:\\\\)*\\u0000/;
/** JSON.stringify writes a lone surrogate as an escape; a valid pair it writes as it is. */
const ESCAPED_SURROGATE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f]/i;

/** Why an event could not be stored as it is, or null. */
function unstorable(e: CeleryEvent): string | null {
  if (!isTaskEventType(e.type) && !isWorkerEventType(e.type)) return `type ${e.type}`;
  const texts: [string, string][] = [["hostname", e.hostname]];
  if (e.uuid !== undefined) texts.push(["uuid", e.uuid]);
  for (const [what, s] of texts) {
    if (typeof s !== "string" || s.includes("\0") || !s.isWellFormed()) return `${what} not storable`;
    if (s.length > LIMITS.name + 60) return `${what} of ${s.length} characters`;
  }
  if (isTaskEventType(e.type) && !e.uuid) return "a task event without uuid";
  if (!(e.timestamp >= EARLIEST_TIMESTAMP && e.timestamp <= e.localReceived + MAX_CLOCK_AHEAD_S)) return `timestamp ${e.timestamp}`;
  if (Object.getPrototypeOf(e.fields) !== null) return "fields with a prototype";
  for (const k of ["retries", "pid", "active", "processed"]) {
    const v = e.fields[k];
    if (typeof v === "number" && !isInt32(v)) return `${k} ${v}`;
  }
  const json = JSON.stringify(e.fields);
  if (json.includes("\0") || ESCAPED_NUL.test(json)) return "NUL in fields";
  if (ESCAPED_SURROGATE.test(json) || !json.isWellFormed()) return "lone surrogate in fields";
  // 64 KB of content, plus markers and JSON's own punctuation and escapes (a control character takes 6).
  if (json.length > 6 * LIMITS.eventFields) return `fields of ${json.length} characters`;
  return null;
}

test(`${ITERATIONS} mutated captures: the decoder never throws and keeps only storable events`, () => {
  const seed = fuzzSeed();
  console.log(`decoder fuzz: seed ${seed} (FUZZ_SEED=${seed} replays it), ${ITERATIONS} messages`);
  const fuzzer = new WireFuzzer(seed, captures);
  const started = performance.now();
  let events = 0;
  let rejected = 0;
  let dropped = 0;
  let batch: CeleryEvent[] = [];
  const fail = (i: number, m: FuzzedMessage, why: string) => {
    throw new Error(`seed ${seed}, message ${i} (${m.mutations.join("; ")}): ${why}\n${String(m.data).slice(0, 300)}`);
  };
  for (let i = 0; i < ITERATIONS; i++) {
    const m = fuzzer.next();
    let d: Decoded;
    try {
      d = decodeRawMessage(m);
    } catch (e) {
      fail(i, m, `decoder threw ${e instanceof Error ? e.stack : typeof e}`);
      return;
    }
    for (const e of d.events) {
      const why = unstorable(e);
      if (why) fail(i, m, why);
    }
    for (const err of d.errors) if (err.detail.length > 400) fail(i, m, `a ${err.detail.length}-character error detail`);
    events += d.events.length;
    rejected += d.errors.length;
    dropped += d.dropped.length;
    batch.push(...d.events);
    if (batch.length >= 500) {
      // The writer's next step must not throw either.
      const b = buildBatch(batch);
      for (const t of b.tasks) if (t.retries !== null && !isInt32(t.retries)) fail(i, m, `task retries ${t.retries}`);
      batch = [];
    }
  }
  buildBatch(batch);
  const seconds = (performance.now() - started) / 1000;
  console.log(`decoder fuzz: ${events} events kept, ${rejected} rejections, ${dropped} fields dropped in ${seconds.toFixed(1)} s`);
  // The mutations leave most messages usable: the fuzz reaches the event code, not only the parser.
  expect(events).toBeGreaterThan(ITERATIONS / 4);
  expect(rejected).toBeGreaterThan(ITERATIONS / 20);
}, 120_000);
