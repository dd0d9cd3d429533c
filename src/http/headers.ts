/**
 * Headers every answer carries, so a browser treats Crisper's pages as
 * what they are: pages that show attacker-controlled text (task arguments,
 * tracebacks, hostnames) to people who may revoke tasks.
 *
 * - Content-Security-Policy: scripts, styles and connections from Crisper
 *   itself only; no inline script, no eval (htmx is told not to use it: see
 *   views/layout.tsx), no plugin, no <base>, forms post only to Crisper.
 *   Were a task's text ever rendered as markup, it could run nothing.
 *   `frame-ancestors 'none'` and X-Frame-Options: no other site may frame a
 *   page (clickjacking the revoke button).
 * - X-Content-Type-Options: nosniff: a JSON answer is never run as a script.
 * - Referrer-Policy: same-origin: task ids and searches in URLs stay inside.
 * - Cache-Control: no-store on everything but the static assets: a page or an
 *   answer seen by a signed-in user is not kept by the browser or a proxy.
 */
import { createMiddleware } from "hono/factory";
import type { Env } from "./context.ts";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const securityHeaders = createMiddleware<Env>(async (c, next) => {
  await next();
  let h = c.res.headers;
  try {
    h.set("x-content-type-options", "nosniff");
  } catch {
    // A Response with immutable headers (Response.redirect): copy it.
    c.res = new Response(c.res.body, c.res);
    h = c.res.headers;
  }
  h.set("x-content-type-options", "nosniff");
  h.set("x-frame-options", "DENY");
  h.set("content-security-policy", CONTENT_SECURITY_POLICY);
  h.set("referrer-policy", "same-origin");
  if (!h.has("cache-control")) h.set("cache-control", "no-store");
});
