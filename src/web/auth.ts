/**
 * CRISPER_AUTH: who may see Crisper and who may act on tasks.
 *
 * Format: whitespace-separated `role:user:secret` entries, role `viewer` or
 * `admin`. The secret is a password, or better a hash from Bun.password
 * (argon2id or bcrypt: `npx bun -e 'console.log(await Bun.password.hash("…"))'`).
 * People sign in with HTTP Basic authentication (a browser asks; curl -u).
 *
 * Without CRISPER_AUTH, every page and the API are open and Crisper is
 * read-only: nobody can revoke. Health, readiness and metrics stay open
 * either way, and Slack's endpoint checks Slack's own signature.
 *
 * Cross-site requests: a browser sends Basic credentials with any request to
 * Crisper, including one a hostile page makes. So an action needs more than
 * credentials: a form carries a token only Crisper's own pages have (an HMAC
 * of the user name), the API takes only `application/json` (which a
 * cross-site form cannot send, and a cross-site script cannot without a CORS
 * preflight Crisper never grants), and a request whose Origin is another site
 * is refused.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { HttpError } from "../api/http-error.ts";

export type Role = "viewer" | "admin";

export interface User {
  name: string;
  role: Role;
}

interface Account extends User {
  /** A password, or an argon2/bcrypt hash of one. */
  secret: string;
}

/** Paths open without credentials even when auth is on. */
const OPEN = [/^\/healthz$/, /^\/readyz$/, /^\/metrics$/, /^\/slack\/events$/, /^\/assets\//];

/** Parses CRISPER_AUTH; returns the problem in one line if it is malformed. */
export function parseAuth(text: string): Account[] | string {
  const accounts: Account[] = [];
  for (const entry of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^(viewer|admin):([^:]+):(.+)$/.exec(entry);
    if (!m) return `expected role:user:password entries (role viewer or admin) separated by spaces, got ${JSON.stringify(entry.split(":").slice(0, 2).join(":"))}…`;
    const [, role, name, secret] = m as unknown as [string, Role, string, string];
    if (accounts.some((a) => a.name === name)) return `user ${JSON.stringify(name)} appears twice`;
    accounts.push({ role, name, secret });
  }
  if (accounts.length === 0) return "no users: expected role:user:password entries";
  return accounts;
}

const isHash = (s: string) => /^\$(argon2(id|i|d)|2[aby]?)\$/.test(s);

function sameText(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

export interface Auth {
  /** Off: no users, read-only. */
  enabled: boolean;
  middleware: MiddlewareHandler;
  /** The token a page's form must carry for this user. */
  formToken(user: User): string;
  /**
   * The admin allowed to act in this request, or a refusal (HttpError 403):
   * auth off (read-only), a viewer, or a request from another site.
   */
  admin(c: Context): User;
  /** A page's form must carry the user's token. */
  checkForm(c: Context, user: User, token: string | undefined): void;
  /** The API takes actions as application/json only. */
  checkJson(c: Context): void;
}

/**
 * The admin allowed to act in this request, or a refusal (HttpError 403):
 * without CRISPER_AUTH Crisper is read-only.
 */
export function requireAdmin(auth: Auth | undefined, c: Context): User {
  if (!auth) throw new HttpError(403, "Crisper is read-only: set CRISPER_AUTH with an admin user to change anything");
  return auth.admin(c);
}

/** The signed-in user of this request (null with auth off or on an open path). */
export function currentUser(c: Context): User | null {
  return (c.get("user" as never) as User | undefined) ?? null;
}

/** `publicUrl`: where people reach Crisper, when a proxy in front rewrites Host. */
export function createAuth(text: string | undefined, publicUrl?: string): Auth {
  const parsed = text ? parseAuth(text) : [];
  if (typeof parsed === "string") throw new Error(`CRISPER_AUTH: ${parsed}`);
  const accounts = new Map(parsed.map((a) => [a.name, a]));
  const key = createHash("sha256").update(`crisper-form-token\u0000${text ?? ""}`).digest();
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
    if (colon < 0) return null;
    const account = accounts.get(decoded.slice(0, colon));
    const password = decoded.slice(colon + 1);
    if (!account) return null;
    const ok = isHash(account.secret) ? await Bun.password.verify(password, account.secret).catch(() => false) : sameText(password, account.secret);
    if (!ok) return null;
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
      if (accounts.size === 0 || OPEN.some((p) => p.test(c.req.path))) return next();
      const user = await check(c.req.header("authorization"));
      if (!user) {
        return c.json({ error: "sign in: this Crisper needs a user name and password (CRISPER_AUTH)" }, 401, {
          "www-authenticate": 'Basic realm="Crisper", charset="UTF-8"',
        });
      }
      c.set("user" as never, user as never);
      return next();
    },
    formToken: (user) => createHmac("sha256", key).update(user.name).digest("hex"),
    admin(c) {
      if (accounts.size === 0) throw new HttpError(403, "Crisper is read-only: set CRISPER_AUTH with an admin user to change anything");
      const user = currentUser(c);
      if (!user || user.role !== "admin") throw new HttpError(403, `${user?.name ?? "this user"} is a viewer: revoking needs an admin`);
      if (!sameOrigin(c)) throw new HttpError(403, "refused: this request came from another site");
      return user;
    },
    checkForm(c, user, token) {
      const want = createHmac("sha256", key).update(user.name).digest("hex");
      if (!token || !sameText(token, want)) throw new HttpError(403, "refused: the form's token is missing or wrong (reload the page)");
    },
    checkJson(c) {
      const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (type !== "application/json") throw new HttpError(415, "send the request body as application/json");
    },
  };
}
