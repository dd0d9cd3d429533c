/**
 * Everything a task carries is attacker-controlled: args, kwargs, results,
 * tracebacks, names, hostnames. These limits keep one message from filling
 * memory, the database or a page.
 */
export const LIMITS = {
  /** A raw broker message larger than this is refused, not parsed. */
  messageBytes: 4 * 1024 * 1024,
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

/**
 * Cuts a string to `max` characters, saying so. Also makes it storable:
 * PostgreSQL text cannot hold NUL, and lone UTF-16 surrogates are not valid
 * Unicode; both are replaced by U+FFFD.
 */
export function truncate(s: string, max: number): string {
  const cut = s.length <= max ? s : `${s.slice(0, max)}… [${s.length - max} more characters cut by Crisper]`;
  return cut.includes("\0") ? cut.replaceAll("\0", "\uFFFD").toWellFormed() : cut.toWellFormed();
}

/** Bounds every string, list and object inside a decoded JSON value. */
export function boundValue(v: unknown, maxString: number = LIMITS.other, depth = 0): unknown {
  if (typeof v === "string") return truncate(v, maxString);
  if (v === null || typeof v !== "object") return v;
  if (depth >= LIMITS.depth) return "[nested too deep: cut by Crisper]";
  if (Array.isArray(v)) {
    const out = v.slice(0, LIMITS.items).map((x) => boundValue(x, maxString, depth + 1));
    if (v.length > LIMITS.items) out.push(`[${v.length - LIMITS.items} more items cut by Crisper]`);
    return out;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, x] of Object.entries(v)) {
    if (n++ >= LIMITS.items) break;
    out[truncate(k, LIMITS.name)] = boundValue(x, maxString, depth + 1);
  }
  return out;
}
