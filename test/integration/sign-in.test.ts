/**
 * Signing in against a real server (Bun.serve with the web app): a user
 * name that does not exist costs what a wrong password costs, whether the
 * accounts hold argon2 hashes or passwords; and failed sign-ins are limited
 * per client address (429 with Retry-After), the right password included,
 * while another address is not affected.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAuth } from "../../src/http/auth.ts";
import { logger } from "../../src/log.ts";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";
import { createApp } from "../../src/web/app.ts";

let dir: string;
let database: Database;
const servers: ReturnType<typeof Bun.serve>[] = [];
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "crisper-signin-"));
  database = await openDatabase({ dataDir: dir });
  await migrate(database);
});

afterAll(async () => {
  for (const s of servers) await s.stop(true);
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

function serve(auth: string, failuresPerMinute?: number): string {
  const app = createApp({ database, log: logger("web", () => {}), auth: createAuth(auth, undefined, { failuresPerMinute }) });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Median time of a refused sign-in for each kind of attempt, measured in turns so load hits them alike. */
async function medians(url: string, attempts: Record<string, string>, rounds = 20): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(attempts).map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [kind, header] of Object.entries(attempts)) {
      const started = performance.now();
      const res = await fetch(`${url}/api/workers`, { headers: { authorization: header } });
      times[kind]?.push(performance.now() - started);
      expect(res.status).toBe(401);
      await res.arrayBuffer();
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

describe("an unknown user costs what a wrong password costs", () => {
  test("argon2 hashes, and a password-only account beside them", async () => {
    const hash = await Bun.password.hash("alice-pw");
    const url = serve(`admin:alice:${hash} viewer:bob:bob-pw`, 10_000);
    const m = await medians(url, {
      wrongHashed: basic("alice", "guess"),
      wrongPlain: basic("bob", "guess"),
      unknown: basic("mallory", "guess"),
    });
    console.log(`[sign-in] argon2 accounts, median ms: ${JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, +v.toFixed(1)])))}`);
    // Without the stand-in verification the unknown user answers in well under
    // a millisecond and argon2 takes tens: a ratio far beyond 3.
    for (const kind of ["wrongHashed", "wrongPlain"] as const) {
      const ratio = (m.unknown ?? NaN) / (m[kind] ?? NaN);
      expect(ratio).toBeGreaterThan(1 / 3);
      expect(ratio).toBeLessThan(3);
    }
    expect((await fetch(`${url}/api/workers`, { headers: { authorization: basic("alice", "alice-pw") } })).status).toBe(200);
  });

  test("passwords only", async () => {
    const url = serve("admin:carol:carol-pw viewer:dave:dave-pw", 10_000);
    const m = await medians(url, { wrong: basic("carol", "guess"), unknown: basic("mallory", "guess") });
    console.log(`[sign-in] password accounts, median ms: wrong ${m.wrong?.toFixed(2)}, unknown ${m.unknown?.toFixed(2)}`);
    const ratio = (m.unknown ?? NaN) / (m.wrong ?? NaN);
    expect(ratio).toBeGreaterThan(1 / 3);
    expect(ratio).toBeLessThan(3);
  });
});

/** GET through node's http client from a chosen local address (the loopback net is 127.0.0.0/8). */
function getFrom(localAddress: string, url: string, authorization?: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, headers: authorization ? { authorization } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("failed sign-ins are limited per client address", () => {
  test("after 10 failures in a minute: 429 with Retry-After, for the right password too; other addresses unaffected", async () => {
    const url = serve("admin:erin:erin-pw");
    const right = basic("erin", "erin-pw");
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await getFrom("127.0.0.1", `${url}/api/workers`, basic("erin", `guess-${i}`))).status);
    expect(statuses).toEqual(Array(10).fill(401));
    const limited = await getFrom("127.0.0.1", `${url}/api/workers`, basic("erin", "guess-10"));
    expect(limited.status).toBe(429);
    const wait = Number(limited.retryAfter);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    // The right password does not get through either: a guesser must not learn it guessed right.
    expect((await getFrom("127.0.0.1", `${url}/api/workers`, right)).status).toBe(429);
    // No credentials at all: the browser's first request, answered with the sign-in prompt.
    expect((await getFrom("127.0.0.1", `${url}/api/workers`)).status).toBe(401);
    // Health stays open.
    expect((await getFrom("127.0.0.1", `${url}/healthz`)).status).toBe(200);
    // Another client address is not limited.
    expect((await getFrom("127.0.0.2", `${url}/api/workers`, right)).status).toBe(200);
    expect((await getFrom("127.0.0.2", `${url}/api/workers`, basic("erin", "typo"))).status).toBe(401);
  });
});
