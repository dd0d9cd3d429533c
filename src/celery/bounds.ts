/**
 * Everything a task carries is attacker-controlled: args, kwargs, results,
 * tracebacks, names, hostnames. These limits keep one message from filling
 * memory, the database or a page, and make every string storable.
 */
export const LIMITS = {
  /** A raw broker message larger than this is refused, not parsed. */
  messageBytes: 4 * 1024 * 1024,
  /** Events in one message past this many are refused (Celery sends a few dozen per task.multi). */
  eventsPerMessage: 10_000,
  /**
   * All of one event's stored fields together, in characters: about 64 KB
   * (cut markers and JSON punctuation come on top). Without it one event with
   * 25 fat fields made one task's API answer 70 MB.
   */
  eventFields: 64 * 1024,
  /** Of which the fields other than args, kwargs, result, exception and traceback may take this much. */
  smallFields: 8 * 1024,
  /** Celery cuts argsrepr/kwargsrepr/result at 1024; other senders may not. */
  repr: 8 * 1024,
  traceback: 64 * 1024,
  /** Names, hostnames, queue names, ids. */
  name: 255,
  /** Any other string field. */
  other: 4 * 1024,
  /** Nested values deeper than this are replaced by a marker. */
  depth: 6,
  /** Keys per object, items per list. */
  items: 200,
} as const;

/** A JSON object (not a list, not null): what a decoded event, envelope or result must be. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** 2000-01-01 in unix seconds: no Celery event is older; 0 (1970) is a sender's bug or a forgery. */
export const EARLIEST_TIMESTAMP = 946_684_800;
/** A sender's clock may run ahead of the collector's, but not by more than a day. */
export const MAX_CLOCK_AHEAD_S = 86_400;

/**
 * Whether a sender's timestamp can be believed. Outside this window the store
 * could refuse it (`to_timestamp` overflows) or it would sort a task first or
 * last forever; such a timestamp is treated as missing.
 */
export function isSaneTimestamp(t: number, localReceived: number): boolean {
  return t >= EARLIEST_TIMESTAMP && t <= localReceived + MAX_CLOCK_AHEAD_S;
}

/** PostgreSQL's integer: a field stored in an integer column must fit, or the whole batch is refused. */
export function isInt32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= -2_147_483_648 && v <= 2_147_483_647;
}

/**
 * NUL or a UTF-16 surrogate, raw or as a JSON escape. PostgreSQL's text and
 * jsonb refuse NUL, and a lone surrogate is not Unicode: either makes the
 * whole batch fail. Tested once on a message's JSON text, so that the strings
 * of the (nearly all) messages without one are not each scanned again. Valid
 * surrogate pairs match too (Python's json escapes emoji as pairs): those
 * messages just take the careful path.
 */
const NEEDS_CLEANING = /[\0\uD800-\uDFFF]|\\u(?:0000|[dD][89a-fA-F])/;

/** Whether strings parsed from this JSON text may hold NUL or lone surrogates. */
export function needsCleaning(jsonText: string): boolean {
  return NEEDS_CLEANING.test(jsonText);
}

/** A string PostgreSQL stores as given: NUL and lone surrogates become U+FFFD (visible, unlike a deleted NUL). */
export function storable(s: string): string {
  return (s.includes("\0") ? s.replaceAll("\0", "\uFFFD") : s).toWellFormed();
}

/**
 * Cuts a string to `max` characters, saying so, and makes it storable. With
 * `clean` false the caller knows there is no NUL or surrogate in it (see
 * needsCleaning), so none can be left or made by the cut.
 */
export function truncate(s: string, max: number, clean = true): string {
  const cut = s.length <= max ? s : `${s.slice(0, max)}… [${s.length - max} more characters cut by Crisper]`;
  return clean ? storable(cut) : cut;
}

/**
 * What is left of one event's size as its fields are copied, and whether its
 * strings need cleaning. Every string and key copied takes its length from
 * `left`; once it is spent, strings are cut to their marker and lists and
 * objects stop with a count of what was left out.
 */
export class Budget {
  constructor(
    public left: number,
    readonly clean = true,
  ) {}
}

/** What a number, boolean or null counts for against a budget: about its JSON. */
const SCALAR_COST = 8;
/** The key under which an object says how many of its keys were cut. */
export const CUT_KEY = "[cut by Crisper]";

/** A string cut to `max` and to what the budget has left. */
export function boundString(s: string, max: number, budget: Budget): string {
  const out = truncate(s, Math.min(max, Math.max(0, budget.left)), budget.clean);
  budget.left -= out.length;
  return out;
}

/** An object key: cut to a name's length, made storable; it costs its length and its punctuation. */
export function boundKey(k: string, budget: Budget): string {
  const out = truncate(k, LIMITS.name, budget.clean);
  budget.left -= out.length + 4;
  return out;
}

/**
 * Bounds every string, list and object inside a decoded JSON value: strings
 * to `maxString`, nesting to LIMITS.depth, lists and objects to LIMITS.items,
 * and all of it to the budget. Objects come out without a prototype, so a key
 * `__proto__` or `constructor` is just a key. Recursion stops at
 * LIMITS.depth, so a value nested 100,000 deep costs six steps.
 */
export function boundValue(v: unknown, maxString: number = LIMITS.other, budget = new Budget(LIMITS.eventFields), depth = 0): unknown {
  if (typeof v === "string") return boundString(v, maxString, budget);
  if (v === null || typeof v !== "object") {
    budget.left -= SCALAR_COST;
    return v;
  }
  if (depth >= LIMITS.depth) return boundString("[nested too deep: cut by Crisper]", Infinity, budget);
  budget.left -= 2;
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      if (i >= LIMITS.items || budget.left <= 0) {
        out.push(`[${v.length - i} more items cut by Crisper]`);
        break;
      }
      out.push(boundValue(v[i], maxString, budget, depth + 1));
    }
    return out;
  }
  const out: Record<string, unknown> = Object.create(null);
  const entries = Object.entries(v);
  let i = 0;
  for (const [k, x] of entries) {
    if (i >= LIMITS.items || budget.left <= 0) {
      out[CUT_KEY] = `${entries.length - i} more keys`;
      break;
    }
    i++;
    out[boundKey(k, budget)] = boundValue(x, maxString, budget, depth + 1);
  }
  return out;
}
