/**
 * Hostile broker traffic, for the decoder's unit tests and the collector's
 * integration tests alike: the messages that crashed Crisper, poison events
 * (each valid but for one field the database would refuse), and a seeded
 * fuzzer that mutates the real captures.
 *
 * Anyone who can PUBLISH on the broker can send any of these.
 */
import type { RawMessage } from "../../src/broker/port.ts";
import { seeded } from "./random.ts";

/** A kombu envelope as Celery 5.2 writes it: base64 of the JSON body. */
export function envelope(body: unknown, routingKey = "task.multi", extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(body)).toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: {},
    properties: { body_encoding: "base64", delivery_info: { exchange: "celeryev", routing_key: routingKey }, delivery_mode: 1, priority: 0 },
    ...extra,
  });
}

/** The two messages that each took `crisper serve` down (issue 12). */
export const CRASH_MESSAGES = {
  /** String() on the content-type called its toString, which is not a function. */
  contentTypeTrap: '{"body":"x","content-type":{"toString":1}}',
  /** A 200 KB body of `[` nested 100,000 deep: JSON.stringify overflowed the stack. */
  deepBody: `{"body":${"[".repeat(100_000)}${"]".repeat(100_000)},"content-type":"application/json"}`,
} as const;

/** A value nested `depth` deep, as JSON text (building it as an object would recurse in JSON.stringify). */
export function deepJson(depth: number, open = "[", close = "]", bottom = "1"): string {
  return open.repeat(depth) + bottom + close.repeat(depth);
}

export interface PoisonEvent {
  /** What is wrong with it. */
  what: string;
  /** The id the store should have it under after cleaning (null: a worker event). */
  storedId: string | null;
  channel: string;
  data: string;
}

/**
 * Task events, each well-formed but for one field the database would refuse
 * or that must not be believed. Every one should cost at most itself.
 * `tag` keeps ids apart between calls.
 */
export function poisonEvents(now: number, tag: string): PoisonEvent[] {
  const base = (uuid: string, extra: Record<string, unknown> = {}) => ({
    type: "task-received",
    uuid,
    hostname: "poison@lab",
    timestamp: now,
    name: "poison.task",
    args: "()",
    kwargs: "{}",
    retries: 0,
    clock: 1,
    pid: 42,
    ...extra,
  });
  const channel = "/0.celeryev/task.multi";
  const event = (what: string, storedId: string | null, body: unknown): PoisonEvent => ({ what, storedId, channel, data: envelope([body]) });
  // `__proto__` as an own key: a computed key defines it, it does not set the prototype.
  const protoKey = { ["__proto__"]: { name: "pwned", exception: "pwned" } };
  return [
    event("NUL in the task id", `poison-nul-${tag}-\uFFFD-x`, base(`poison-nul-${tag}-\u0000-x`)),
    event("a lone surrogate in the task id", `poison-surrogate-${tag}-\uFFFD-x`, base(`poison-surrogate-${tag}-\ud800-x`)),
    event("NUL and lone surrogates in names, hostnames, args and nested JSON", `poison-text-${tag}`, {
      ...base(`poison-text-${tag}`),
      hostname: "poison\u0000@lab\udc00",
      name: "poison\u0000.task",
      args: "('\u0000', '\ud83d')",
      kwargs: "{'k\u0000': 1}",
      extra: { "k\u0000ey": ["v\u0000", "\udfff", { deeper: "\u0000" }] },
    }),
    event("a timestamp in 1970", `poison-1970-${tag}`, base(`poison-1970-${tag}`, { timestamp: 0 })),
    event("a timestamp in the year 3 trillion", `poison-future-${tag}`, base(`poison-future-${tag}`, { timestamp: 1e20 })),
    event("a timestamp two days ahead", `poison-ahead-${tag}`, base(`poison-ahead-${tag}`, { timestamp: now + 2 * 86_400 })),
    event("retries 1.5 and a pid of 1e20 (integer columns)", `poison-int-${tag}`, base(`poison-int-${tag}`, { retries: 1.5, pid: 1e20 })),
    event("`__proto__` and `constructor` keys", `poison-proto-${tag}`, { ...base(`poison-proto-${tag}`), ...protoKey, constructor: "x", toString: 1 }),
    // Base64 and all, just under the 4 MB a message may have.
    event("400 KB each of args, kwargs, exception and traceback, and 1,000 junk fields", `poison-huge-${tag}`, {
      ...base(`poison-huge-${tag}`, { type: "task-failed" }),
      args: "A".repeat(400_000),
      kwargs: "K".repeat(400_000),
      exception: "E".repeat(400_000),
      traceback: "T".repeat(400_000),
      ...Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`junk${i}`, "J".repeat(500)])),
    }),
    {
      what: "a worker heartbeat with active 1e12 (integer column)",
      storedId: null,
      channel: "/0.celeryev/worker.heartbeat",
      data: envelope({ type: "worker-heartbeat", hostname: `poison-worker-${tag}@lab`, timestamp: now, freq: 2, active: 1e12, processed: 2.5, pid: 7 }, "worker.heartbeat"),
    },
    {
      what: "a result with status `constructor`",
      storedId: null,
      channel: `celery-task-meta-poison-ctor-${tag}`,
      data: JSON.stringify({ status: "constructor", task_id: `poison-ctor-${tag}`, result: null }),
    },
    {
      what: "a result with NUL in its task id, a date_done in 1970 and an exc_message nested 100,000 deep",
      storedId: `poison-result-${tag}-\uFFFD`,
      channel: `celery-task-meta-poison-result-${tag}`,
      data: `{"status":"FAILURE","task_id":"poison-result-${tag}-\\u0000","date_done":"1970-01-01T00:00:00","traceback":"T","result":{"exc_type":"ValueError","exc_message":${deepJson(100_000)}}}`,
    },
  ];
}


/** A seed from FUZZ_SEED, or a fresh one; tests print it so a failure can be replayed. */
export function fuzzSeed(): number {
  const fromEnv = Number(process.env.FUZZ_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31) + 1;
}

/** The Celery fields a mutation likes to aim at: the ones the collector reads. */
const TARGET_FIELDS = [
  "type", "uuid", "hostname", "timestamp", "name", "args", "kwargs", "result", "exception", "traceback", "retries", "runtime",
  "clock", "pid", "queue", "routing_key", "exchange", "root_id", "parent_id", "eta", "expires", "freq", "active", "processed",
  "loadavg", "sw_ident", "sw_ver", "sw_sys", "utcoffset", "status", "task_id", "date_done", "worker",
];
const HOSTILE_KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "k\u0000", "\ud800", "", "x".repeat(300)];
const HOSTILE_STRINGS = [
  "", "\u0000", "a\u0000b", "\ud800", "x\udc00", "\udbff\udfff", "😀", "\n\r\t\u001b[31m", "<script>alert(1)</script>", "%s%n%x",
  "constructor", "__proto__", "task-received", "worker-heartbeat", "SUCCESS", "1e999", "null", "'; drop table tasks; --",
];
const HOSTILE_NUMBERS = [0, -1, 1.5, -0.5, 1e20, -1e20, 1e308, -1e308, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 53 + 2, 946_684_799, 4e12, Number.MIN_VALUE];

export interface FuzzedMessage extends RawMessage {
  /** The mutations applied, for the failure message. */
  mutations: string[];
}

interface Original {
  stream: RawMessage["stream"];
  channel: string;
  /** Events: the envelope, its body decoded; results: the stored meta. */
  envelope: Record<string, unknown> | null;
  payload: unknown;
  receivedAt: number;
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Sets an own key, even `__proto__` (plain assignment would set the prototype). */
function put(dict: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(dict, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Mutations of real captured messages: flipped bytes, truncated bodies,
 * deleted fields, swapped types, hostile keys and strings, nested junk,
 * envelopes taken apart. Deterministic for a seed.
 */
export class WireFuzzer {
  readonly random: () => number;
  private originals: Original[];
  constructor(
    readonly seed: number,
    captures: readonly RawMessage[],
    /** Upper bound on nesting for junk values; the rare deepest ones go to 100,000. */
    private readonly maxDepth = 1000,
  ) {
    this.random = seeded(seed);
    this.originals = captures.map((m) => {
      const data = typeof m.data === "string" ? m.data : new TextDecoder().decode(m.data);
      const { stream, channel, receivedAt } = m;
      if (stream === "result-backend") return { stream, channel, receivedAt, envelope: null, payload: JSON.parse(data) };
      const env = JSON.parse(data);
      return { stream, channel, receivedAt, envelope: env, payload: JSON.parse(Buffer.from(env.body, "base64").toString("utf8")) };
    });
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }
  private pick<T>(xs: readonly T[]): T {
    const x = xs[this.int(xs.length)];
    if (x === undefined) throw new Error("pick from an empty list");
    return x;
  }
  private chance(p: number): boolean {
    return this.random() < p;
  }

  /** A junk value of any JSON type, mostly small; now and then deep, wide or long. */
  junk(level = 0): unknown {
    const r = this.random();
    if (r < 0.25) return this.pick(HOSTILE_STRINGS);
    if (r < 0.45) return this.pick(HOSTILE_NUMBERS);
    if (r < 0.5) return this.pick([null, true, false]);
    if (r < 0.55) return "x".repeat(this.chance(0.02) ? 200_000 : this.int(2000));
    if (r < 0.65 && level < 3) return Array.from({ length: this.int(6) }, () => this.junk(level + 1));
    if (r < 0.75 && level < 3) return Object.fromEntries(Array.from({ length: this.int(6) }, () => [this.chance(0.5) ? this.pick(HOSTILE_KEYS) : this.pick(TARGET_FIELDS), this.junk(level + 1)]));
    if (r < 0.8) return Array.from({ length: this.chance(0.02) ? 5000 : this.int(300) }, (_, i) => i);
    if (r < 0.85) return Object.fromEntries(Array.from({ length: this.int(500) }, (_, i) => [`k${i}`, i]));
    if (r < 0.9) return { nested: JSON.parse(deepJson(1 + this.int(50))) };
    return this.random() * 1e6;
  }

  /** Nested junk as text, up to maxDepth deep (rarely 100,000). */
  private deepText(): string {
    const depth = this.chance(0.005) ? 100_000 : 1 + this.int(this.maxDepth);
    return this.chance(0.5) ? deepJson(depth) : deepJson(depth, '{"a":', "}");
  }

  /** Picks an event dict inside a payload (a dict, or a task.multi list of them). */
  private someDict(payload: unknown): Record<string, unknown> | null {
    if (Array.isArray(payload)) return payload.length ? this.someDict(payload[this.int(payload.length)]) : null;
    return isDict(payload) ? payload : null;
  }

  private mutatePayload(payload: unknown, done: string[]): unknown {
    const dict = this.someDict(payload);
    const op = this.int(7);
    if (!dict || op === 0) {
      done.push("payload replaced");
      return this.chance(0.5) ? this.junk() : [payload, this.junk()];
    }
    const keys = Object.keys(dict);
    const key = this.chance(0.7) ? this.pick(TARGET_FIELDS) : this.pick(keys.length ? keys : TARGET_FIELDS);
    switch (op) {
      case 1:
        done.push(`deleted ${key}`);
        delete dict[key];
        break;
      case 2:
      case 3: {
        const value = this.junk();
        done.push(`${key} = ${JSON.stringify(value)?.slice(0, 60)}`);
        put(dict, key, value);
        break;
      }
      case 4: {
        const k = this.pick(HOSTILE_KEYS);
        done.push(`hostile key ${JSON.stringify(k)}`);
        put(dict, k, this.junk());
        break;
      }
      case 5: {
        // Swap two fields' values: types end up where Celery never puts them.
        const other = this.pick(TARGET_FIELDS);
        done.push(`swapped ${key} and ${other}`);
        const a = dict[key];
        put(dict, key, dict[other]);
        put(dict, other, a);
        break;
      }
      default:
        done.push(`${key} nested junk`);
        put(dict, key, "\u0001DEEP\u0001");
        break;
    }
    return payload;
  }

  /** Serializes, putting nested junk (kept as a placeholder so far) in as text. */
  private stringify(v: unknown): string {
    const text = JSON.stringify(v) ?? "null";
    return text.includes('"\\u0001DEEP\\u0001"') ? text.replaceAll('"\\u0001DEEP\\u0001"', () => this.deepText()) : text;
  }

  /** Text-level damage: flipped characters, a cut, an inserted fragment, a number out of range. */
  private damageText(text: string, done: string[]): string {
    const op = this.int(4);
    if (op === 0) {
      const chars = text.split("");
      const n = 1 + this.int(8);
      for (let i = 0; i < n && chars.length; i++) {
        chars[this.int(chars.length)] = this.pick(["\u0000", "\ud800", '"', "\\", "{", "[", "]", "}", ",", ":", "0", "x", String.fromCharCode(this.int(65536))]);
      }
      done.push(`${n} characters flipped`);
      return chars.join("");
    }
    if (op === 1) {
      const at = this.int(text.length);
      done.push(`cut at ${at} of ${text.length}`);
      return text.slice(0, at);
    }
    if (op === 2) {
      const fragment = this.pick(['\\u0000', '\\ud800', '\\udfff', '{"__proto__":', "[[[[", '"', "\\", "1e999", "-1e999", ",,", "null"]);
      const at = this.int(text.length);
      done.push(`inserted ${fragment} at ${at}`);
      return text.slice(0, at) + fragment + text.slice(at);
    }
    done.push("a number made 1e999");
    return text.replace(/\d+(\.\d+)?/, this.pick(["1e999", "-1e999", "1e20", "-0", "4e12"]));
  }

  /** One mutated message: a random captured message with one to three mutations. */
  next(): FuzzedMessage {
    const o = this.pick(this.originals);
    const done: string[] = [];
    let payload = this.mutatePayload(structuredClone(o.payload), done);
    for (let i = this.int(3); i > 0; i--) payload = this.mutatePayload(payload, done);
    let bodyText = this.stringify(payload);
    if (this.chance(0.3)) bodyText = this.damageText(bodyText, done);
    if (o.stream === "result-backend") return { stream: o.stream, channel: o.channel, data: bodyText, receivedAt: o.receivedAt, mutations: done };

    const env: Record<string, unknown> = { ...o.envelope, body: Buffer.from(bodyText).toString("base64") };
    let envText: string | null = null;
    switch (this.int(10)) {
      case 0:
        done.push("body as raw JSON, not base64");
        env.properties = {};
        envText = JSON.stringify(env).replace(JSON.stringify(env.body), () => bodyText);
        break;
      case 1: {
        const ct = this.pick<unknown>([{ toString: 1 }, { valueOf: null }, 42, ["application/json"], null, "", "application/x-python-serialize", "application/json\u0000"]);
        done.push(`content-type ${JSON.stringify(ct)}`);
        env["content-type"] = ct;
        break;
      }
      case 2:
        done.push("properties junk");
        env.properties = this.junk();
        break;
      case 3:
        done.push("envelope damaged");
        envText = this.damageText(JSON.stringify(env), done);
        break;
      case 4:
        done.push("body base64 damaged");
        env.body = this.damageText(String(env.body), done);
        break;
      default:
        break;
    }
    return { stream: o.stream, channel: o.channel, data: envText ?? JSON.stringify(env), receivedAt: o.receivedAt, mutations: done };
  }
}
