/**
 * The web server's Hono app: API, health, metrics, pages (Slack mounts here too).
 */
import { Hono } from "hono";
import { HttpError } from "../api/http-error.ts";
import { createMetricsRoutes } from "../api/metrics.ts";
import { type ApiDeps, createApiRoutes, createHealthRoutes } from "../api/routes.ts";
import type { Logger } from "../log.ts";
import type { LiveHub } from "./live.ts";
import { createPageRoutes } from "./pages.tsx";
import { SLACK_EVENTS_PATH, type SlackBot } from "../../bot/slack-app.ts";

export interface AppDeps extends ApiDeps {
  log: Logger;
  live?: LiveHub;
  /** Answers Slack's requests at POST /slack/events when the bot is configured. */
  slack?: Pick<SlackBot, "handle">;
  /** `slack`: only Slack's endpoint and health (`crisper bot`). */
  only?: "slack";
}

export function createApp(deps: AppDeps) {
  const app = new Hono();
  // Before every route: with CRISPER_AUTH, nothing but health, metrics and Slack is open.
  if (deps.auth) app.use("*", deps.auth.middleware);
  app.route("/", createHealthRoutes(deps));
  app.route("/", createMetricsRoutes(deps));
  const slack = deps.slack;
  app.post(SLACK_EVENTS_PATH, (c) =>
    slack
      ? slack.handle(c.req.raw)
      : c.json({ error: "the Slack bot is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (README, Slack)" }, 404),
  );
  if (deps.only !== "slack") {
    app.route("/api", createApiRoutes(deps));
    app.route("/", createPageRoutes(deps));
  }
  app.notFound((c) => c.json({ error: `no such path: ${c.req.path.slice(0, 200)}` }, 404));
  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json({ error: err.message, ...err.extra }, err.status);
    deps.log.error(`${c.req.method} ${c.req.path.slice(0, 200)}: ${err.stack ?? err.message}`);
    return c.json({ error: "internal error (logged)" }, 500);
  });
  return app;
}
