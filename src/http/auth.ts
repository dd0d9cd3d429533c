/**
 * Signing in with CRISPER_AUTH (src/auth/users.ts) and who may act.
 *
 * People sign in with HTTP Basic authentication (a browser asks; curl -u).
 * Without CRISPER_AUTH, every page and the API are open and Crisper is
 * read-only: nobody can revoke. Health, readiness and metrics stay open
 * either way; Slack's endpoint is mounted before sign-in and checks Slack's
 * own signature.
 *
 * Cross-site requests: a browser sends Basic credentials with any request to
 * Crisper, including one a hostile page makes. So an action needs more than
 * credentials: a form carries a token only Crisper's own pages have (an HMAC
 * of the user name), the API takes only `application/json` (which a
 * cross-site form cannot send, and a cross-site script cannot without a CORS
 * preflight Crisper never grants), and a request whose Origin is another site
 * is refused.
 *
 * Guessing: a wrong user name costs the same as a wrong password (the
 * same verification runs, against a stand-in secret), so timing does not
 * tell which user names exist; and failures are limited per client address
 * (sign-in-limit.ts).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { parseAuth, type User } from "../auth/users.ts";
import type { AdminEnv, Env } from "./context.ts";
import { HttpError } from "./errors.ts";
import { clientAddress, createSignInLimit } from "./sign-in-limit.ts";

/** Paths open without credentials even when auth is on. */
const OPEN = [/^\/healthz$/, /^\/readyz$/, /^\/metrics$/, /^\/assets\//];

const READ_ONLY = "Crisper is read-only: set CRISPER_AUTH with an admin user to change anything";

const isHash = (s: string) => /^\$(argon2(id|i|d)|2[aby]?)\$/.test(s);

function sameText(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

export interface Auth {
  /** Off: no users, read-only. */
  enabled: boolean;
  /** Signs the request's user in (`c.var.user`), or answers 401. */
  middleware: MiddlewareHandler<Env>;
  /** The token a page's form must carry for this user. */
  formToken(user: User): string;
  /**
   * `user` if they may act in this request, or a refusal (HttpError 403):
   * auth off (read-only), a viewer, or a request from another site.
   */
  admin(c: Context, user: User | null): User;
  /** A page's form must carry the user's token. */
  checkForm(user: User, token: string | undefined): void;
  /** The API takes actions as application/json only. */
  checkJson(c: Context): void;
}

/** Without CRISPER_AUTH nobody signs in: every request is anonymous. */
export const signedOut: MiddlewareHandler<Env> = async (c, next) => {
  c.set("user", null);
  await next();
};

/** The signed-in user of this request (null with auth off or on an open path). */
export function currentUser(c: Context<Env>): User | null {
  return c.var.user;
}

/**
 * Lets only an admin through (`c.var.admin`), and only from Crisper itself:
 * `json`, an API action (application/json); `form`, a page's form carrying
 * the user's token. Checked before the body is validated, so a refusal is
 * the answer whatever the body holds. Without CRISPER_AUTH, refused: Crisper
 * is read-only.
 */
export function adminOnly(auth: Auth | undefined, body?: "json" | "form") {
  return createMiddleware<AdminEnv>(async (c, next) => {
    if (!auth) throw new HttpError(403, READ_ONLY);
    const admin = auth.admin(c, c.var.user);
    if (body === "json") auth.checkJson(c);
    if (body === "form") {
      const form = await c.req.parseBody();
      auth.checkForm(admin, typeof form.csrf === "string" ? form.csrf : undefined);
    }
    c.set("admin", admin);
    await next();
  });
}

export interface AuthOptions {
  /** Failed sign-ins a client address may make in a minute before it gets 429 (default 10). */
  failuresPerMinute?: number;
}

/** `publicUrl`: where people reach Crisper, when a proxy in front rewrites Host. */
export function createAuth(text: string | undefined, publicUrl?: string, options: AuthOptions = {}): Auth {
  const parsed = text ? parseAuth(text) : [];
  if (typeof parsed === "string") throw new Error(`CRISPER_AUTH: ${parsed}`);
  const accounts = new Map(parsed.map((a) => [a.name, a]));
  const limit = createSignInLimit(options.failuresPerMinute ?? 10);
  // What a failed check verifies besides the account's own secret, so every
  // failure costs the same: a hash of the kind (and cost) the accounts use,
  // when any account has one (its result is ignored), and a text compare.
  const standInHash = parsed.find((a) => isHash(a.secret))?.secret;
  const standInText = createHash("sha256").update(`crisper-stand-in\u0000${text ?? ""}`).digest("hex");
  const verify = async (password: string, secret: string) =>
    isHash(secret) ? await Bun.password.verify(password, secret).catch(() => false) : sameText(password, secret);
  const key = createHash("sha256").update(`crisper-form-token\u0000${text ?? ""}`).digest();
  const formToken = (user: User) => createHmac("sha256", key).update(user.name).digest("hex");
  // Checking an argon2 hash takes tens of milliseconds: remember the
  // Authorization headers already verified (hashed, bounded).
  const verified = new Map<string, User>();

  async function check(header: string | undefined): Promise<User | null> {
    if (!header?.startsWith("Basic ")) return null;
    const cacheKey = createHash("sha256").update(header).digest("hex");
    const hit = verified.get(cacheKey);
    if (hit) return hit;
    let decoded: string;
    try {
      decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    } catch {
      return null;
    }
    const colon = decoded.indexOf(":");
    const account = colon < 0 ? undefined : accounts.get(decoded.slice(0, colon));
    const password = decoded.slice(colon + 1);
    // Unknown user: the same work as a wrong password, then no.
    const ok = await verify(password, account?.secret ?? standInText);
    if (standInHash && !isHash(account?.secret ?? "")) await verify(password, standInHash);
    if (!account || !ok) return null;
    const user = { name: account.name, role: account.role };
    if (verified.size > 1000) verified.clear();
    verified.set(cacheKey, user);
    return user;
  }

  // Browsers send Origin with every POST; a client without one (curl) is not a browser tricked by a page.
  const sameOrigin = (c: Context) => {
    const origin = c.req.header("origin");
    if (origin === undefined) return true;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return false;
    }
    const ours = [c.req.header("host"), c.req.header("x-forwarded-host"), new URL(c.req.url).host, publicUrl ? new URL(publicUrl).host : undefined];
    return ours.includes(host);
  };

  return {
    enabled: accounts.size > 0,
    middleware: async (c, next) => {
      if (accounts.size === 0 || OPEN.some((p) => p.test(c.req.path))) return signedOut(c, next);
      const header = c.req.header("authorization");
      const address = clientAddress(c);
      const wait = header === undefined ? 0 : limit.retryAfter(address);
      if (wait > 0) {
        return c.json({ error: `too many failed sign-ins from this address: try again in ${wait} s` }, 429, { "retry-after": String(wait) });
      }
      const user = await check(header);
      if (!user) {
        // A browser's first request carries no credentials: only a wrong one counts.
        if (header !== undefined) limit.failed(address);
        return c.json({ error: "sign in: this Crisper needs a user name and password (CRISPER_AUTH)" }, 401, {
          "www-authenticate": 'Basic realm="Crisper", charset="UTF-8"',
        });
      }
      c.set("user", user);
      return next();
    },
    formToken,
    admin(c, user) {
      if (accounts.size === 0) throw new HttpError(403, READ_ONLY);
      if (!user || user.role !== "admin") throw new HttpError(403, `${user?.name ?? "this user"} is a viewer: this needs an admin`);
      if (!sameOrigin(c)) throw new HttpError(403, "refused: this request came from another site");
      return user;
    },
    checkForm(user, token) {
      if (!token || !sameText(token, formToken(user))) throw new HttpError(403, "refused: the form's token is missing or wrong (reload the page)");
    },
    checkJson(c) {
      const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (type !== "application/json") throw new HttpError(415, "send the request body as application/json");
    },
  };
}
