/**
 * The web server's Hono app: API, health, metrics, pages, and whatever the
 * composition root mounts beside them (Slack's events).
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createMetricsRoutes } from "../api/metrics.ts";
import { type ApiDeps, createApiRoutes, createHealthRoutes } from "../api/routes.ts";
import { signedOut } from "../http/auth.ts";
import type { Env, MountedHandler } from "../http/context.ts";
import { HttpError } from "../http/errors.ts";
import type { Logger } from "../log.ts";
import type { LiveHub } from "./live.ts";
import { createPageRoutes } from "./pages.tsx";

export interface AppDeps extends ApiDeps {
  log: Logger;
  live?: LiveHub;
  /** Answers Slack's requests (POST /slack/events); it checks Slack's signature itself. */
  slack?: MountedHandler;
  /** `slack`: only Slack's endpoint and health (`crisper bot`). */
  only?: "slack";
}

export function createApp(deps: AppDeps) {
  const app = new Hono<Env>();
  // Before sign-in: Slack signs its requests, and has no CRISPER_AUTH password.
  const slack = deps.slack;
  if (slack) app.post(slack.path, (c) => slack.fetch(c.req.raw));
  // Before every other route: with CRISPER_AUTH, nothing but health and metrics is open.
  app.use("*", deps.auth?.middleware ?? signedOut);
  app.route("/", createHealthRoutes(deps));
  app.route("/", createMetricsRoutes(deps));
  if (deps.only !== "slack") {
    app.route("/api", createApiRoutes(deps));
    app.route("/", createPageRoutes(deps));
  }
  app.notFound((c) => c.json({ error: `no such path: ${c.req.path.slice(0, 200)}` }, 404));
  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json({ error: err.message, ...err.extra }, err.status);
    // Hono's own refusals (a body that is not JSON, say): their status, in the same shape.
    if (err instanceof HTTPException && err.status < 500) return c.json({ error: err.message }, err.status);
    deps.log.error(`${c.req.method} ${c.req.path.slice(0, 200)}: ${err.stack ?? err.message}`);
    return c.json({ error: "internal error (logged)" }, 500);
  });
  return app;
}
