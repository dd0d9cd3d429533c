/**
 * The one error type routes throw, and the one place a request that fails
 * its schema becomes one: `app.onError` turns both into `{"error": …}`.
 */
import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";

export class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 415 | 500 | 502 | 503,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

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
