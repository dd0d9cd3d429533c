/**
 * What a request carries through Crisper's Hono apps: every router is
 * `new Hono<Env>()`, so `c.var.user` is typed wherever it is read.
 */
import type { User } from "../auth/users.ts";

export interface Env {
  Variables: {
    /** Who signed in (CRISPER_AUTH); null with auth off or on an open path. */
    user: User | null;
  };
}

/** After `adminOnly` (src/http/auth.ts): the admin acting in this request. */
export interface AdminEnv {
  Variables: Env["Variables"] & { admin: User };
}

/** A request another part answers on the web server's port: Slack's events (bot/slack-app.ts). */
export interface MountedHandler {
  /** The path it answers (POST). */
  path: string;
  fetch(req: Request): Promise<Response> | Response;
}
