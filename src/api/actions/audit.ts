/**
 * Every control action goes through `audited`: it runs the action and
 * records who asked, when, what, on what, how it ended and from where
 * (store/queries/audit.ts), whether it was done, refused (an HttpError of
 * 4xx: 409 with the reason, say) or failed (the broker did not take it).
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AdminEnv, Env } from "../../http/context.ts";
import { HttpError } from "../../http/errors.ts";
import { clientAddress } from "../../http/sign-in-limit.ts";
import { errorText, type Logger } from "../../log.ts";
import type { Database } from "../../store/database.ts";
import { recordAudit } from "../../store/queries/audit.ts";

export const AUDIT_ACTIONS = ["revoke", "terminate", "requeue", "retry", "retry_bulk", "purge", "schedule_add", "schedule_remove"] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who acts: the signed-in admin and the request's address. */
export interface Actor {
  name: string;
  ip: string | null;
}

export function actorOf(c: Context<AdminEnv>): Actor {
  const ip = clientAddress(c);
  return { name: c.var.admin.name, ip: ip === "unknown" ? null : ip };
}

export interface AuditDeps {
  database: Database;
  log?: Logger;
  now?: () => number;
}

/** Runs `action`; its `detail` (counts, ids) goes to the audit with the outcome. */
export async function audited<T>(
  deps: AuditDeps,
  actor: Actor,
  what: { action: AuditAction; target: string },
  action: () => Promise<{ answer: T; detail: Record<string, unknown> }>,
): Promise<T> {
  const record = async (outcome: "ok" | "refused" | "failed", status: number, detail: Record<string, unknown>) => {
    const at = new Date((deps.now?.() ?? Date.now() / 1000) * 1000);
    try {
      await recordAudit(deps.database, { at, actor: actor.name, action: what.action, target: what.target.slice(0, 255), outcome, status, detail, ip: actor.ip });
    } catch (e) {
      // The action is done (or refused) either way; a missing record is said loudly.
      deps.log?.error(`audit: could not record ${actor.name}'s ${what.action} of ${what.target.slice(0, 255)} (${outcome}): ${errorText(e)}`);
    }
  };
  let result: { answer: T; detail: Record<string, unknown> };
  try {
    result = await action();
  } catch (e) {
    const status = e instanceof HttpError ? e.status : 500;
    await record(status < 500 ? "refused" : "failed", status, { reason: e instanceof HttpError ? e.message : "internal error" });
    throw e;
  }
  await record("ok", 200, result.detail);
  deps.log?.info(`${actor.name} (${actor.ip ?? "?"}): ${what.action} ${what.target.slice(0, 255)}: ${JSON.stringify(result.detail).slice(0, 500)}`);
  return result.answer;
}

/** A param as the audit keeps it when the request was refused before validation: plain, bounded text. */
const plain = (v: string | undefined) => (v ?? "").toWellFormed().replace(/[\u0000-\u001f\u007f-\u009f]/g, "\ufffd").slice(0, 255);

/**
 * Put before `adminOnly` on an action's route: a request refused before the
 * action is reached — a viewer, a request from another site, a body that is
 * not JSON — is recorded too (refusals after it are `audited`'s). `target`
 * names the route parameter the action is about. Only signed-in users'
 * requests: without CRISPER_AUTH anyone could fill the table with refusals.
 */
export function auditRefusals(deps: AuditDeps, action: AuditAction, target?: string) {
  return createMiddleware<Env>(async (c, next) => {
    await next();
    const e = c.error;
    const user = c.var.user;
    if (!user || !(e instanceof HttpError) || (e.status !== 403 && e.status !== 415)) return;
    const ip = clientAddress(c);
    try {
      await recordAudit(deps.database, {
        at: new Date((deps.now?.() ?? Date.now() / 1000) * 1000),
        actor: plain(user.name),
        action,
        target: target ? plain(c.req.param(target)) : "",
        outcome: "refused",
        status: e.status,
        detail: { reason: e.message },
        ip: ip === "unknown" ? null : ip,
      });
    } catch (err) {
      deps.log?.error(`audit: could not record a refused ${action}: ${errorText(err)}`);
    }
  });
}
