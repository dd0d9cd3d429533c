/**
 * Slack's endpoint under hostile or unlucky conditions, on a real server
 * (Bun.serve with the web app and the bot, the embedded database) and the
 * stand-in for Slack's Web API:
 * - a chunked 50 MB POST (no Content-Length) is cut off with 413 after about
 *   Slack's 1 MB, not read to the end or buffered;
 * - a signed `/celery` command is answered while Slack's auth.test fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Links } from "../../bot/messages.ts";
import { MAX_SLACK_BODY_BYTES, type SlackBot, createSlackBot } from "../../bot/slack-app.ts";
import { logger } from "../../src/log.ts";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";
import { createApp } from "../../src/web/app.ts";
import { type FakeSlack, messageText, sendSlashCommand, startFakeSlack } from "../support/fake-slack.ts";

const SECRET = "hardening-signing-secret";
let slack: FakeSlack;
let dir: string;
let database: Database;
let bot: SlackBot;
let server: ReturnType<typeof Bun.serve>;
let url: string;
const logged: string[] = [];

beforeAll(async () => {
  slack = await startFakeSlack();
  // Slack's Web API is down for the whole file: every auth.test fails.
  slack.failNext("auth.test", 1_000_000, { status: 503 });
  dir = mkdtempSync(join(tmpdir(), "crisper-slack-hard-"));
  database = await openDatabase({ dataDir: dir });
  await migrate(database);
  bot = createSlackBot({
    token: "xoxb-test-token",
    signingSecret: SECRET,
    apiUrl: slack.apiUrl,
    groupThreshold: 5,
    pollIntervalS: 1,
    database,
    links: new Links("https://crisper.example.com"),
    log: logger("slack", (l) => logged.push(l)),
    postAlerts: false,
  });
  await bot.start();
  const app = createApp({ database, log: logger("web", (l) => logged.push(l)), slack: bot });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  url = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.stop(true);
  await bot?.stop();
  await database?.close();
  await slack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Sends a chunked POST of up to `total` bytes through a raw socket, as fast
 * as the server takes it, and stops when the server answers or closes.
 * Returns the status line and how much had been sent by then.
 */
async function chunkedPost(path: string, total: number): Promise<{ status: number; sentBeforeAnswer: number; ms: number }> {
  const chunk = Buffer.alloc(64 * 1024, "a");
  const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(server.port ?? 0, "127.0.0.1");
    let sent = 0;
    let answer = "";
    let sentBeforeAnswer = -1;
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
      resolve({ status, sentBeforeAnswer: sentBeforeAnswer < 0 ? sent : sentBeforeAnswer, ms: performance.now() - started });
    };
    socket.on("data", (d) => {
      if (sentBeforeAnswer < 0) sentBeforeAnswer = sent;
      answer += d.toString("latin1");
      if (answer.includes("\r\n\r\n")) finish();
    });
    socket.on("error", () => finish());
    socket.on("close", () => finish());
    socket.on("connect", () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
          `X-Slack-Request-Timestamp: ${Math.floor(Date.now() / 1000)}\r\nX-Slack-Signature: v0=00\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      const pump = () => {
        while (!ended && sentBeforeAnswer < 0 && sent < total) {
          sent += chunk.length;
          if (!socket.write(framed)) return void socket.once("drain", pump);
        }
        if (!ended && sent >= total) socket.write("0\r\n\r\n");
      };
      pump();
    });
    const timer = setTimeout(() => reject(new Error(`no answer; sent ${sent} bytes`)), 60_000);
  });
}

describe("POST /slack/events body limit", () => {
  test("a chunked 50 MB body is cut off with 413 soon after 1 MB, not read to the end", async () => {
    const r = await chunkedPost("/slack/events", 50 * 2 ** 20);
    console.log(
      `[slack] chunked 50 MB POST: ${r.status} after ${(r.sentBeforeAnswer / 2 ** 20).toFixed(1)} MB sent, ${r.ms.toFixed(0)} ms`,
    );
    expect(r.status).toBe(413);
    // The server stopped reading: the client could not push much beyond the
    // limit plus what the two sockets' buffers hold. Read to the end, this would be 50 MB.
    expect(r.sentBeforeAnswer).toBeLessThan(16 * 2 ** 20);
    expect(r.sentBeforeAnswer).toBeGreaterThan(MAX_SLACK_BODY_BYTES);
  });

  test("a declared Content-Length over the limit is refused before reading", async () => {
    const res = await fetch(`${url}/slack/events`, { method: "POST", body: "a".repeat(MAX_SLACK_BODY_BYTES + 1) });
    expect(res.status).toBe(413);
    expect((await res.json()).error).toContain("too large");
  });

  test("the server still answers Slack afterwards", async () => {
    const r = await sendSlashCommand(url, "help", { secret: SECRET, responseUrl: slack.responseUrl("after") });
    expect(r.status).toBe(200);
  });
});

describe("Slack's auth.test unreachable", () => {
  test("a signed /celery command is still answered", async () => {
    expect(slack.calls.some((c) => c.method === "auth.test" && c.status === 503)).toBe(true);
    const r = await sendSlashCommand(url, "alerts", { secret: SECRET, responseUrl: slack.responseUrl("no-auth-test") });
    expect(r.status).toBe(200);
    expect(r.body.response_type).toBe("ephemeral");
    expect(messageText(r.body)).toMatch(/alert/i);
  });

  test("a forged command is still refused", async () => {
    const r = await sendSlashCommand(url, "alerts", { secret: "not-the-secret", responseUrl: slack.responseUrl("forged") });
    expect(r.status).toBe(401);
  });
});
