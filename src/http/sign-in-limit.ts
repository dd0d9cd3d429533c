/**
 * Failed sign-ins, limited per client address: after `max` failures within
 * a minute, that address gets 429 (with Retry-After) for every signed
 * request until the oldest failure is a minute old, the right password
 * included (otherwise a guesser learns when it guessed right). Refused
 * requests are not verified: argon2 costs tens of milliseconds, and a
 * guesser should not get to spend them.
 *
 * The address is the TCP peer's (Bun's server.requestIP). Behind a reverse
 * proxy every client shares the proxy's address, so one person mistyping,
 * or one guesser, locks everyone out for up to a minute. X-Forwarded-For is
 * not read: any client can write it.
 */
import type { Context } from "hono";
import { getConnInfo } from "hono/bun";

const WINDOW_MS = 60_000;
/** Addresses remembered at once; past this the oldest are forgotten, so a spray of addresses costs bounded memory. */
const MAX_ADDRESSES = 10_000;

export interface SignInLimit {
  /** Seconds until `address` may try again, or 0 if it may now. */
  retryAfter(address: string): number;
  failed(address: string): void;
}

export function createSignInLimit(maxPerMinute: number, now: () => number = Date.now): SignInLimit {
  const failures = new Map<string, number[]>();
  const recent = (address: string) => {
    const t = now();
    const times = (failures.get(address) ?? []).filter((at) => t - at < WINDOW_MS);
    if (times.length) failures.set(address, times);
    else failures.delete(address);
    return times;
  };
  return {
    retryAfter(address) {
      const times = recent(address);
      if (times.length < maxPerMinute) return 0;
      const oldest = times[times.length - maxPerMinute] ?? now();
      return Math.max(1, Math.ceil((oldest + WINDOW_MS - now()) / 1000));
    },
    failed(address) {
      const times = recent(address);
      times.push(now());
      // Only the last `max` failures decide when the address may try again.
      failures.delete(address);
      failures.set(address, times.slice(-maxPerMinute));
      if (failures.size > MAX_ADDRESSES) {
        const oldest = failures.keys().next().value;
        if (oldest !== undefined) failures.delete(oldest);
      }
    },
  };
}

/** The client's address as Bun's server sees it (the TCP peer); "unknown" when served without a Bun server (tests' app.request). */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}
