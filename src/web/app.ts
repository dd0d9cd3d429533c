/**
 * The web server's Hono app: API, health, metrics, pages, the MCP server, and whatever the
 * composition root mounts beside them (Slack's events).
 */
import { Hono } from "hono";
import { createMetricsRoutes } from "../api/metrics.ts";
import { type ApiDeps, createApiRoutes, createHealthRoutes } from "../api/routes.ts";
import { signedOut } from "../http/auth.ts";
import type { Env, MountedHandler } from "../http/context.ts";
import { type ErrorAnswer, answerFor } from "../http/errors.ts";
import { securityHeaders } from "../http/headers.ts";
import { wellFormedUrl } from "../http/requests.ts";
import type { Logger } from "../log.ts";
import type { LiveHub } from "./live.ts";
import { createMcpRoutes } from "../mcp/server.ts";
import { createApiDocsRoutes } from "./api-docs.tsx";
import { createPageRoutes, errorPage } from "./pages.tsx";
import { setSiteBanner } from "../../views/layout.tsx";
import type { ReachabilityState } from "../broker/reachability.ts";

export interface AppDeps extends ApiDeps {
  log: Logger;
  live?: LiveHub;
  /** Answers Slack's requests (POST /slack/events); it checks Slack's signature itself. */
  slack?: MountedHandler;
  /** `slack`: only Slack's endpoint and health (`crisper bot`). */
  only?: "slack";
  /** Whether the broker can be reached, for the overview (pages.tsx). */
  brokerState?: () => ReachabilityState;
  /** A banner on every page (`crisper demo`: "demo data"). */
  banner?: { title: string; text: string };
  /** The retention in force, for the overview (seconds). */
  retention?: { taskS: number; alertS: number };
}

export function createApp(deps: AppDeps) {
  const app = new Hono<Env>();
  setSiteBanner(deps.banner ?? null);
  // On every answer, Slack's and the errors included.
  app.use("*", securityHeaders);
  app.use("*", wellFormedUrl);
  // Before sign-in: Slack signs its requests, and has no CRISPER_AUTH password.
  const slack = deps.slack;
  if (slack) app.post(slack.path, (c) => slack.fetch(c.req.raw));
  // Before every other route: with CRISPER_AUTH, nothing but health and metrics is open.
  app.use("*", deps.auth?.middleware ?? signedOut);
  app.route("/", createHealthRoutes(deps));
  app.route("/", createMetricsRoutes(deps));
  if (deps.only !== "slack") {
    app.route("/api", createApiRoutes(deps));
    app.route("/", createApiDocsRoutes());
    app.route("/", createMcpRoutes(deps));
    app.route("/", createPageRoutes(deps));
  }
  app.notFound((c) => {
    const answer: ErrorAnswer = { status: 404, message: `no such path: ${c.req.path.slice(0, 200)}`, extra: {} };
    return errorPage(c, answer) ?? c.json({ error: answer.message }, 404);
  });
  // A browser gets an error page (pages.tsx); the API and other clients `{"error": …}`.
  app.onError((err, c) => {
    const answer = answerFor(err, `${c.req.method} ${c.req.path.slice(0, 200)}`, deps.log);
    return errorPage(c, answer) ?? c.json({ error: answer.message, ...answer.extra }, answer.status);
  });
  return app;
}
