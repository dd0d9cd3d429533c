/**
 * Answers in bounded time when the database hangs. A PostgreSQL that is
 * stopped mid-failover, or frozen, does not refuse a query: it never
 * answers, and a page waiting on it would hang as long as the client waits.
 * So a page or an API answer that is not ready within its deadline is a 503
 * that says the database is not answering. The query itself is not
 * cancelled here (the database's statement timeout does that); it finishes
 * or fails later, unseen.
 */
import { createMiddleware } from "hono/factory";
import type { Env } from "./context.ts";
import { DATABASE_NOT_ANSWERING, HttpError } from "./errors.ts";

/** How long a page or an API answer may take before it is a 503: inside the 5 s a person (or a probe) waits. */
export const ANSWER_DEADLINE_MS = 4000;

/** Thrown when `within` gives up. */
export class DeadlineExceeded extends Error {}

/** `work`, or a DeadlineExceeded once `ms` have passed; the timer never outlives the race. */
export async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Middleware: the rest of the request (its queries and rendering) has `ms`
 * to finish, or the answer is a 503 saying the database is not answering.
 */
export function answerWithin(ms = ANSWER_DEADLINE_MS) {
  return createMiddleware<Env>(async (_c, next) => {
    try {
      await within(ms, next());
    } catch (e) {
      if (e instanceof DeadlineExceeded) throw new HttpError(503, DATABASE_NOT_ANSWERING);
      throw e;
    }
  });
}
