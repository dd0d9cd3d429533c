/**
 * The one error type routes throw, the one place a request that fails its
 * schema becomes one, and the one place any error becomes an answer:
 * `answerFor` turns an HttpError into its status and message, a database
 * that does not answer into a 503, and anything else into a bare 500 whose
 * stack goes to the log, never to the client.
 */
import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import { type Logger, errorText } from "../log.ts";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 502 | 503;

export class HttpError extends Error {
  constructor(
    readonly status: ErrorStatus,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** What a page or an API answer says when PostgreSQL does not answer in time, or refuses. */
export const DATABASE_NOT_ANSWERING = "the database is not answering, so this cannot be read now; try again in a moment (/readyz says what is down)";

/** A failed validation in one line: its first problem, after the name of the field (`limit: expected …`). */
export function firstProblem(error: z.core.$ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid request";
  const where = issue.path.map(String).join(".");
  return where ? `${where}: ${issue.message}` : issue.message;
}

/**
 * Hono middleware that validates one part of the request (`query`, `param`,
 * `json`, `form`) against a schema of src/api/schemas.ts; the handler reads
 * the parsed value with `c.req.valid(target)`. A failure is a 400 that says
 * what was expected.
 */
export function validated<Target extends keyof ValidationTargets, Schema extends z.ZodType>(target: Target, schema: Schema) {
  return zValidator(target, schema, (result) => {
    if (!result.success) throw new HttpError(400, firstProblem(result.error));
  });
}

/**
 * postgres.js's codes for a connection that failed or went away, and
 * PostgreSQL's SQLSTATEs for "not now": connection exceptions (class 08),
 * a shut-down or starting server (57P01-57P03), a cancelled statement
 * (57014: the web's statement timeout).
 */
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT"]);
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|57014)$/;

/** The code that says the database is down or too slow (ECONNREFUSED, 57P01, …), in the error or what it wraps (drizzle wraps the driver's); undefined for any other error. */
function unavailableCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = "code" in e ? e.code : undefined;
    if (typeof code === "string" && (CONNECTION_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return code;
  }
  return undefined;
}

/** Whether an error says the database is down or too slow, not that a query is wrong. */
export const isDatabaseUnavailable = (err: unknown): boolean => unavailableCode(err) !== undefined;

export interface ErrorAnswer {
  status: ErrorStatus;
  /** Safe to show: never a stack, a query or a parameter. */
  message: string;
  extra: Record<string, unknown>;
}

/**
 * What any error thrown while answering becomes. Expected refusals are
 * answered as they are; a database that is down is a 503, said once in the
 * log per reason; anything else is a bug: one log line with its stack (and
 * without the query's parameters), and a bare 500.
 */
export function answerFor(err: Error, where: string, log: Logger): ErrorAnswer {
  if (err instanceof HttpError) {
    if (err.message === DATABASE_NOT_ANSWERING) log.once("database-deadline", "the database did not answer a page or an API request in time; they answer 503 until it does");
    return { status: err.status, message: err.message, extra: err.extra };
  }
  // Hono's own refusals (a body that is not JSON, say): their status, in the same shape.
  if (err instanceof HTTPException && err.status < 500) {
    const status = err.status === 413 || err.status === 415 ? err.status : 400;
    return { status, message: err.message || "bad request", extra: {} };
  }
  const code = unavailableCode(err);
  if (code) {
    log.once(`database-unavailable:${code}`, `the database is not answering (${errorText(err)}); pages and the API answer 503 until it does`);
    return { status: 503, message: DATABASE_NOT_ANSWERING, extra: {} };
  }
  const frames = (err.stack ?? "").split("\n").filter((l) => l.trimStart().startsWith("at "));
  log.error(`${where}: ${errorText(err)}\n${frames.join("\n")}`);
  return { status: 500, message: "internal error", extra: {} };
}
