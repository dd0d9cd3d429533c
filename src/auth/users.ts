/**
 * CRISPER_AUTH: who may see Crisper and who may act on tasks.
 *
 * Format: whitespace-separated `role:user:secret` entries, role `viewer` or
 * `admin`. The secret is a password, or better a hash from Bun.password
 * (argon2id or bcrypt: `npx bun -e 'console.log(await Bun.password.hash("…"))'`).
 *
 * Parsing only: the configuration checks the value at start-up, and the web
 * server's sign-in (src/http/auth.ts) uses the accounts.
 */
export type Role = "viewer" | "admin";

export interface User {
  name: string;
  role: Role;
}

export interface Account extends User {
  /** A password, or an argon2/bcrypt hash of one. */
  secret: string;
}

/** Parses CRISPER_AUTH; returns the problem in one line if it is malformed. */
export function parseAuth(text: string): Account[] | string {
  const accounts: Account[] = [];
  for (const entry of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^(viewer|admin):([^:]+):(.+)$/.exec(entry);
    if (!m) return `expected role:user:password entries (role viewer or admin) separated by spaces, got ${JSON.stringify(entry.split(":").slice(0, 2).join(":"))}…`;
    const [, role, name = "", secret = ""] = m;
    if (accounts.some((a) => a.name === name)) return `user ${JSON.stringify(name)} appears twice`;
    accounts.push({ role: role === "admin" ? "admin" : "viewer", name, secret });
  }
  if (accounts.length === 0) return "no users: expected role:user:password entries";
  return accounts;
}
