/**
 * Hostile requests against a real server (Bun.serve with the web app, the
 * embedded database filled from the real captures): every bad parameter is
 * a 400 that says which, on the API as `{"error"}` and on the pages as a
 * page; no answer carries a stack trace; an unexpected error is a bare 500
 * logged once; and every answer carries the security headers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { createAuth } from "../../src/http/auth.ts";
import { logger } from "../../src/log.ts";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";
import { encodeCursor } from "../../src/store/queries/cursor.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { createApp } from "../../src/web/app.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";

const FLAKY = "c1f5847a-a3de-43a7-8d91-07bc215c2d09";
const ADMIN = `Basic ${Buffer.from("root:root-pw").toString("base64")}`;
let dir: string;
let database: Database;
const servers: ReturnType<typeof Bun.serve>[] = [];
let url: string;
let authedUrl: string;
const logged: string[] = [];

function serve(app: ReturnType<typeof createApp>) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "crisper-bad-"));
  database = await openDatabase({ dataDir: dir });
  await migrate(database);
  const events = [
    ...captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")),
    ...captureMessages(readCapture("celery-5.2-redis-faults.jsonl")),
  ].flatMap((m) => decodeRawMessage(m).events);
  await writeBatch(database, buildBatch(events));
  const log = logger("web", (l) => logged.push(l));
  const app = createApp({ database, log });
  // An unexpected error in a handler, to see what the client and the log get.
  app.get("/api/explode", () => {
    throw new Error("kaboom: secret internals");
  });
  url = serve(app);
  authedUrl = serve(createApp({ database, log, auth: createAuth("admin:root:root-pw") }));
});

afterAll(async () => {
  for (const s of servers) await s.stop(true);
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

const noStack = (text: string) => {
  expect(text).not.toMatch(/\n\s+at |\.tsx?:\d+|node_modules/);
};

/** Each bad query: the parameter its 400 must name. */
const BAD_TASK_QUERIES: [string, string][] = [
  ["q=a%00b", "q"],
  ["name=app.tasks%00.x", "name"],
  ["worker=celery@web%0A1", "worker"],
  ["queue=%1B%5B31mred", "queue"],
  ["q=%C2%85", "q"], // NEL, a C1 control character
  ["q=%7F", "q"],
  ["q=%ED%A0%80", "q"], // half of a surrogate pair, percent-encoded
  ["q=%FF%FE", "q"], // not UTF-8 at all
  ["q=100%", "q"], // a stray %
  ["state=DONE", "state"],
  ["state=%00", "state"],
  ["cursor=garbage", "cursor"],
  [`cursor=${encodeCursor({ at: "Sat, 01 Jan 2000", id: "x" })}`, "cursor"], // a date JS reads and PostgreSQL does not
  [`cursor=${encodeCursor({ at: "2026-11-24 12:00:00.123456+00", id: "a\u0000b" })}`, "cursor"],
  [`cursor=${"A".repeat(5000)}`, "cursor"],
  ["limit=0", "limit"],
  ["limit=-1", "limit"],
  ["limit=2.5", "limit"],
  ["limit=1e3", "limit"],
  ["limit=abc", "limit"],
  ["since=yesterday", "since"],
  ["until=99999999999999999999", "until"],
  [`name=${"n".repeat(300)}`, "name"],
];

describe("bad query parameters are 400s that name the parameter", () => {
  test("on GET /api/tasks, as JSON", async () => {
    for (const [query, name] of BAD_TASK_QUERIES) {
      const res = await fetch(`${url}/api/tasks?${query}`);
      const text = await res.text();
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(JSON.parse(text).error).toStartWith(`${name}: `);
      noStack(text);
    }
  });

  test("on the tasks page, as a page a person can read (or JSON for a client that asks for no HTML)", async () => {
    for (const [query, name] of BAD_TASK_QUERIES) {
      const res = await fetch(`${url}/tasks?${query}`, { headers: { accept: "text/html" } });
      const text = await res.text();
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(text).toContain("This request is not one Crisper can answer");
      expect(text).toContain(`${name}: `);
      noStack(text);
    }
    const json = await fetch(`${url}/tasks?q=a%00b`);
    expect(json.status).toBe(400);
    expect((await json.json()).error).toStartWith("q: ");
  });

  test("alerts: an unknown status or kind, a garbage cursor", async () => {
    for (const [query, name] of [
      ["status=nope", "status"],
      ["kind=%00", "kind"],
      ["kind=task_lost%0A", "kind"],
      ["cursor=!!!", "cursor"],
      ["cursor=", ""],
      ["cursor=eA", "cursor"], // base64url of "x"
      [`cursor=${Buffer.from("1e3").toString("base64url")}`, "cursor"],
      ["limit=0", "limit"],
    ]) {
      const res = await fetch(`${url}/api/alerts?${query}`);
      if (!name) {
        expect(res.status).toBe(200);
        continue;
      }
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect((await res.json()).error).toStartWith(`${name}: `);
      const page = await fetch(`${url}/alerts?${query}`, { headers: { accept: "text/html" } });
      if (name !== "cursor" && name !== "limit") expect({ query, status: page.status }).toEqual({ query, status: 400 });
    }
  });

  test("ids and hostnames in the path: control characters, lone surrogates, 10 KB", async () => {
    for (const path of ["/api/tasks/a%00b", "/api/tasks/%0A", "/api/tasks/%ED%B0%80", `/api/tasks/${"x".repeat(10_000)}`]) {
      const res = await fetch(url + path);
      const text = await res.text();
      expect({ path: path.slice(0, 40), status: res.status }).toEqual({ path: path.slice(0, 40), status: 400 });
      expect(JSON.parse(text).error).toBeString();
      noStack(text);
    }
    for (const path of ["/tasks/a%00b", "/workers/%00", "/workers/a%1Bb", `/tasks/${"x".repeat(10_000)}`, "/tasks/%ED%A0%80"]) {
      const res = await fetch(url + path, { headers: { accept: "text/html" } });
      expect({ path: path.slice(0, 40), status: res.status }).toEqual({ path: path.slice(0, 40), status: 400 });
      noStack(await res.text());
    }
  });

  test("a 100 KB id is refused by the server before Crisper sees it (431), and the server lives on", async () => {
    const res = await fetch(`${url}/api/tasks/${"x".repeat(100_000)}`);
    console.log(`[http] a 100 KB id: ${res.status}`);
    expect([400, 414, 431]).toContain(res.status);
    noStack(await res.text());
    expect((await fetch(`${url}/api/tasks/${FLAKY}`)).status).toBe(200);
  });

  test("a good request still works, with a real cursor", async () => {
    const first = await (await fetch(`${url}/api/tasks?limit=2`)).json();
    expect(first.tasks).toHaveLength(2);
    const next = await fetch(`${url}/api/tasks?limit=2&cursor=${first.next_cursor}`);
    expect(next.status).toBe(200);
    expect((await fetch(`${url}/tasks?q=naïve&limit=500`)).status).toBe(200);
    // A whole surrogate pair (an emoji) is text: searched, found nothing.
    expect((await (await fetch(`${url}/api/tasks?q=${encodeURIComponent("🙂")}`)).json()).tasks).toEqual([]);
  });
});

describe("bad bodies", () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(authedUrl + path, { method: "POST", headers: { authorization: ADMIN, "content-type": "application/json", ...headers }, body });

  test("a schedule named with a NUL or a lone surrogate (JSON's \\ud800) is a 400", async () => {
    for (const body of ['{"name":"a\\u0000b","task":"t","every_s":60}', '{"name":"\\ud800","task":"t","every_s":60}', '{"name":"n","task":"t\\u001b","every_s":60}']) {
      const res = await post("/api/schedules", body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect((await res.json()).error).toMatch(/^(name|task): control characters and lone surrogates/);
    }
    const absurd = await post("/api/schedules", '{"name":"n","task":"t","every_s":1e308}');
    expect(absurd.status).toBe(400);
  });

  test("an action's body over 64 KB is a 413, declared or chunked", async () => {
    const big = JSON.stringify({ name: "n", task: "t", every_s: 60, pad: "x".repeat(100_000) });
    expect((await post("/api/schedules", big)).status).toBe(413);
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const res = await fetch(`${authedUrl}/api/schedules`, {
      method: "POST",
      headers: { authorization: ADMIN, "content-type": "application/json" },
      body: chunked,
    });
    expect(res.status).toBe(413);
  });

  test("JSON that is not JSON is a 400 that says so", async () => {
    const res = await post("/api/schedules", "{nope");
    expect(res.status).toBe(400);
    noStack(await res.text());
  });
});

describe("an unexpected error", () => {
  test("is a bare 500 {error: internal error}, its stack logged once", async () => {
    logged.length = 0;
    const res = await fetch(`${url}/api/explode`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "internal error" });
    const lines = logged.filter((l) => l.includes("kaboom"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("GET /api/explode: kaboom: secret internals");
    expect(lines[0]).toMatch(/\\n\s+at /);
  });

  test("on a page whose database is gone (closed), a 500 page without the stack", async () => {
    const gone = await openDatabase({ dataDir: mkdtempSync(join(tmpdir(), "crisper-gone-")) });
    await migrate(gone);
    await gone.close();
    const lines: string[] = [];
    const goneUrl = serve(createApp({ database: gone, log: logger("web", (l) => lines.push(l)) }));
    const res = await fetch(`${goneUrl}/workers`, { headers: { accept: "text/html" } });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(text).toContain("internal error");
    noStack(text);
    expect(lines.filter((l) => l.includes("error") && l.includes("GET /workers"))).toHaveLength(1);
    const api = await fetch(`${goneUrl}/api/workers`);
    expect(await api.json()).toEqual({ error: "internal error" });
  });
});

describe("headers", () => {
  test("pages: no framing, a content security policy, nosniff, a referrer policy, not stored", async () => {
    for (const path of ["/", "/tasks", `/tasks/${FLAKY}`, "/workers", "/alerts", "/tasks?q=%00"]) {
      const res = await fetch(url + path, { headers: { accept: "text/html" } });
      const h = res.headers;
      expect(h.get("x-frame-options")).toBe("DENY");
      const csp = h.get("content-security-policy") ?? "";
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).not.toContain("unsafe-eval");
      expect(h.get("x-content-type-options")).toBe("nosniff");
      expect(h.get("referrer-policy")).toBe("same-origin");
      expect(h.get("cache-control")).toBe("no-store");
      // Nothing inline for the policy to have to allow.
      const html = await res.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/<style|\bstyle=/);
    }
  });

  test("signed-in pages and API answers are not stored; errors and metrics carry nosniff", async () => {
    for (const path of ["/", "/api/tasks", `/api/tasks/${FLAKY}`, "/api/nope"]) {
      const res = await fetch(authedUrl + path, { headers: { authorization: ADMIN } });
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
    for (const path of ["/metrics", "/healthz", "/api/tasks?limit=0", "/slack/events"]) {
      expect((await fetch(url + path)).headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  test("the stylesheet and scripts are cached (they are the same for everyone) and typed", async () => {
    const page = await (await fetch(`${url}/`)).text();
    const css = /href="(\/assets\/crisper\.css\?v=[0-9a-f]+)"/.exec(page)?.[1];
    expect(css).toBeString();
    const res = await fetch(url + css);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/css");
    expect(res.headers.get("cache-control")).toContain("max-age");
    expect((await fetch(`${url}/assets/htmx.min.js`)).headers.get("content-type")).toContain("javascript");
  });
});
