/**
 * The Slack bot on real parts: redis-server, Debian's Celery 5.2 workers,
 * PostgreSQL, and Crisper as `crisper serve` runs it, with a stand-in for
 * Slack's Web API (the only fake the suite allows) recording every call.
 * Commands are signed the way Slack signs them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Links } from "../../bot/messages.ts";
import { createSlackBot } from "../../bot/slack-app.ts";
import { syncAlerts } from "../../src/alerts/store.ts";
import { logger } from "../../src/log.ts";
import { createApp } from "../../src/web/app.ts";
import { type LabSettings, sendTasks } from "../support/celery.ts";
import { type FakeSlack, messageText, sendSlashCommand, slackSignature, startFakeSlack } from "../support/fake-slack.ts";
import { waitUntil } from "../support/processes.ts";
import { QUICK_INTERVALS, scenarios } from "../support/scenario.ts";

const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const PUBLIC_URL = "https://crisper.example.com";

const servers = scenarios("slack", { store: "postgres" });
let slack: FakeSlack;
const until = (what: string, check: () => Promise<boolean> | boolean, ms = 60_000) => waitUntil(async () => check(), ms, what, 200);

beforeAll(async () => {
  [, slack] = await Promise.all([servers.start(), startFakeSlack()]);
});

afterAll(async () => {
  await servers.stop();
  await slack?.stop();
});

/** A fresh Redis db, database and Crisper with the bot on, posting to `channel`. */
async function setup(channel: string, lab: Partial<LabSettings> = {}) {
  const s = await servers.scenario(
    {
      ...QUICK_INTERVALS,
      SLACK_BOT_TOKEN: "xoxb-test-token",
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_ALERT_CHANNEL: channel,
      SLACK_API_URL: slack.apiUrl,
      SLACK_POLL_INTERVAL_S: "0.5",
      PUBLIC_URL,
    },
    lab,
  );
  return Object.assign(s, {
    /** Successful posts to this channel. */
    posts: () => slack.posts().filter((p) => p.channel === channel),
  });
}

describe("/celery commands answer with real data", () => {
  let s: Awaited<ReturnType<typeof setup>>;
  const ids: Record<string, string> = {};
  const ask = (text: string) => sendSlashCommand(s.crisper.url, text, { secret: SECRET, responseUrl: slack.responseUrl("cmd") });

  beforeAll(async () => {
    s = await setup("#cmd-alerts", { taskEvents: true });
    await s.worker("cmd@lab");
    const sent = await sendTasks(s.lab, [
      { task: "labapp.add", args: [2, 3] },
      { task: "labapp.boom", args: ["disk full on /var"] },
      { task: "labapp.add", args: ["<!channel> <https://evil.example|click here>", "`x` *bold*"] },
    ]);
    [ids.ok, ids.failed, ids.hostile] = sent as [string, string, string];
    for (const [id, state] of [
      [ids.ok, "SUCCESS"],
      [ids.failed, "FAILURE"],
      // Python adds two strings: the hostile text comes back as the result too.
      [ids.hostile, "SUCCESS"],
    ] as const) {
      await until(`${id} ${state}`, async () => (await s.crisper.get(`/api/tasks/${id}`)).body?.task?.state === state);
    }
  }, 120_000);

  test("task <id>: state, name, worker, args, times, runtime and a link, within Slack's 3 seconds", async () => {
    const r = await ask(`task ${ids.ok}`);
    console.log(`[slack] /celery task answered in ${r.ms.toFixed(0)} ms`);
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(3000);
    expect(r.body.response_type).toBe("ephemeral");
    const text = messageText(r.body);
    expect(text).toMatch(/\*Args\* `[[(]2, 3[)\]]`/);
    expect(text).toMatch(/\*Runtime\*\n\d+(\.\d+)? m?s/);
    for (const part of ["SUCCESS", "labapp.add", "cmd@lab", "`celery`", "*Retries*\n0", `${PUBLIC_URL}/tasks/${ids.ok}`, "*Result* `5`"]) {
      expect(text).toContain(part);
    }
    // Times are Slack dates, shown in each reader's timezone.
    expect(text).toMatch(/<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|\d{4}-/);
  });

  test("task <id> of a failure: the exception's last line", async () => {
    const text = messageText((await ask(`task ${ids.failed}`)).body);
    expect(text).toContain("FAILURE");
    expect(text).toContain("ValueError");
    expect(text).toContain("disk full on /var");
  });

  test("what a task carries is escaped: no channel ping, no disguised link", async () => {
    const text = messageText((await ask(`task ${ids.hostile}`)).body);
    expect(text).toContain("&lt;!channel&gt;");
    expect(text).not.toContain("<!channel>");
    expect(text).not.toContain("<https://evil");
    expect(text).not.toContain("`x`");
  });

  test("an id never seen gets a plain 'never seen', not PENDING", async () => {
    const r = await ask("task 00000000-dead-beef-0000-000000000000");
    expect(r.status).toBe(200);
    const text = messageText(r.body);
    expect(text).toContain("never seen");
    expect(text).toContain("00000000-dead-beef-0000-000000000000");
    expect(text).not.toMatch(/\*PENDING\*/);
  });

  test("worker <hostname>: online, heartbeat, processed; an unknown one lists the known", async () => {
    await until("processed counted", async () => {
      const w = (await s.crisper.get("/api/workers")).body.workers.find((x: any) => x.hostname === "cmd@lab");
      return (w?.processed ?? 0) >= 3;
    });
    const text = messageText((await ask("worker cmd@lab")).body);
    expect(text).toContain("*online*");
    expect(text).toContain("cmd@lab");
    expect(text).toMatch(/\*Processed\*\n[3-9]/);
    expect(text).toContain(`${PUBLIC_URL}/workers/cmd%40lab`);
    const unknown = messageText((await ask("worker nobody@nowhere")).body);
    expect(unknown).toContain("knows no worker named `nobody@nowhere`");
    expect(unknown).toContain("`cmd@lab`");
  });

  test("queue <name>, alerts, help, and anything else gets help", async () => {
    await until("queue known", async () => (await s.crisper.get("/api/queues")).body.queues.some((q: any) => q.name === "celery"));
    const queue = messageText((await ask("queue celery")).body);
    expect(queue).toContain("*Waiting*\n0");
    expect(queue).toContain("*Unacked*");
    expect(messageText((await ask("queue nope")).body)).toContain("knows no queue named `nope`");
    expect(messageText((await ask("alerts")).body)).toContain("No open alerts");
    // Ordinary traffic: nothing was posted to the alert channel.
    expect(s.posts()).toHaveLength(0);
    const help = messageText((await ask("help")).body);
    expect(help).toContain("`/celery task <id>`");
    const other = messageText((await ask("frobnicate now")).body);
    expect(other).toContain("I don't know `frobnicate now`");
    expect(other).toContain("/celery alerts");
  });

  test("a bad signature, a stale timestamp or no signature at all: 401", async () => {
    const bad = await sendSlashCommand(s.crisper.url, "alerts", {
      secret: SECRET,
      responseUrl: slack.responseUrl("x"),
      signature: slackSignature("not-the-secret", Math.floor(Date.now() / 1000), "token=x"),
    });
    expect(bad.status).toBe(401);
    // Correctly signed, but six minutes old: outside Slack's replay window.
    const stale = await sendSlashCommand(s.crisper.url, "alerts", {
      secret: SECRET,
      responseUrl: slack.responseUrl("x"),
      timestamp: Math.floor(Date.now() / 1000) - 6 * 60,
    });
    expect(stale.status).toBe(401);
    const unsigned = await fetch(`${s.crisper.url}/slack/events`, { method: "POST", body: "command=/celery&text=alerts" });
    expect(unsigned.status).toBe(401);
  });

  test("a slow answer: acknowledged at once, then sent through response_url", async () => {
    // The same bot with a zero budget for answering inline.
    const bot = createSlackBot({
      token: "xoxb-test-token",
      signingSecret: SECRET,
      apiUrl: slack.apiUrl,
      groupThreshold: 3,
      pollIntervalS: 1,
      database: s.crisper.database,
      links: new Links(PUBLIC_URL),
      log: logger("slack-test"),
      postAlerts: false,
      quickAnswerMs: 0,
    });
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: createApp({ database: s.crisper.database, slack: bot, log: logger("web-test") }).fetch });
    try {
      const r = await sendSlashCommand(`http://127.0.0.1:${server.port}`, `task ${ids.ok}`, { secret: SECRET, responseUrl: slack.responseUrl("slow") });
      expect(r.status).toBe(200);
      expect(r.body.text).toBe("Looking that up…");
      let followUp: any;
      await until("response_url answer", () => {
        followUp = slack.calls.find((c) => c.method === "response_url" && c.body.text?.includes(ids.ok as string));
        return Boolean(followUp);
      });
      expect(followUp.body.replace_original).toBe(true);
      expect(messageText(followUp.body)).toContain("SUCCESS");
    } finally {
      await server.stop(true);
    }
  });
});

describe("alerts go to SLACK_ALERT_CHANNEL", () => {
  test("Slack answering 429 (Retry-After) and then 503 still gets the alert, once", async () => {
    const s = await setup("#retry-alerts");
    slack.failNext("chat.postMessage", 1, { status: 429, headers: { "retry-after": "1" }, channel: "#retry-alerts" });
    slack.failNext("chat.postMessage", 1, { status: 503, channel: "#retry-alerts" });
    const before = slack.calls.length;
    await syncAlerts(
      s.crisper.database,
      "beat_missed",
      [{ kind: "beat_missed", subject: "nightly-report", summary: "nightly-report is overdue", details: { task: "reports.nightly" } }],
      new Date(),
    );
    s.crisper.slack?.poster?.nudge();
    await until("alert posted", () => s.posts().some((p) => p.text.includes("nightly-report")), 30_000);
    const attempts = slack.calls.slice(before).filter((c) => c.method === "chat.postMessage" && c.body.channel === "#retry-alerts");
    expect(attempts.map((c) => c.status).slice(0, 3)).toEqual([429, 503, 200]);
    // Retry-After was honoured.
    expect((attempts[1]?.at ?? 0) - (attempts[0]?.at ?? 0)).toBeGreaterThanOrEqual(900);
    await (s.crisper.slack?.poster ?? expect.unreachable("no alert poster")).nextPass();
    expect(s.posts().filter((p) => p.text.includes("nightly-report") && !p.thread_ts)).toHaveLength(1);
  }, 60_000);

  test("a worker SIGKILLed holding 20 tasks: one grouped post, worker_offline posted, its resolution in the thread when the worker returns", async () => {
    const s = await setup("#oncall", { taskEvents: true, prefetchMultiplier: 5 });
    const w = await s.worker("pool@lab", { concurrency: 4 });
    const ids = await sendTasks(s.lab, Array.from({ length: 20 }, () => ({ task: "labapp.sleepy", args: [120] })));
    await until("4 running and 16 prefetched", async () => {
      const v = (await s.crisper.get("/api/workers")).body.workers.find((x: any) => x.hostname === "pool@lab");
      return v?.active_tasks?.length === 4 && v?.reserved_tasks?.length === 16;
    });
    await until("all 20 received", async () => {
      const { body } = await s.crisper.get("/api/tasks?worker=pool@lab&limit=50");
      return body.tasks.filter((t: any) => t.state === "RECEIVED" || t.state === "STARTED").length === 20;
    });
    expect(s.posts()).toHaveLength(0);

    const killedAt = performance.now();
    await w.kill();
    let grouped: any;
    await until("grouped task_lost post", () => {
      grouped = s.posts().find((p) => /20 tasks lost/.test(p.text));
      return Boolean(grouped);
    });
    console.log(`[ttd] SIGKILL → grouped task_lost post in Slack: ${((performance.now() - killedAt) / 1000).toFixed(1)} s`);
    let offline: any;
    await until("worker_offline post", () => {
      offline = s.posts().find((p) => p.text.includes("Worker offline") && p.text.includes("pool@lab"));
      return Boolean(offline);
    });
    await until("prefetched_stranded post", () => s.posts().some((p) => p.text.includes("Prefetched messages stranded")));
    const groupedText = messageText(grouped);
    expect(groupedText).toContain("`pool@lab`");
    expect(groupedText).toContain("…and 10 more");
    expect(groupedText).toContain(`${PUBLIC_URL}/alerts?kind=task_lost`);
    expect(groupedText).toContain(`${PUBLIC_URL}/tasks/${ids[0]}`);
    // One message for the twenty, none for each.
    expect(s.posts().filter((p) => /tasks? lost/i.test(p.text))).toHaveLength(1);

    // The worker comes back: worker_offline resolves, and says so in its thread.
    const again = await s.worker("pool@lab", { concurrency: 4 });
    let reply: any;
    await until("resolution in the thread", () => {
      reply = s.posts().find((p) => p.thread_ts === offline.ts);
      return Boolean(reply);
    });
    expect(messageText(reply)).toContain("Resolved");
    expect(messageText(reply)).toContain("heartbeats again");
    // Open alerts are not posted again while they stay open: not by a whole poster pass after these.
    await (s.crisper.slack?.poster ?? expect.unreachable("no alert poster")).nextPass();
    expect(s.posts().filter((p) => p.text.includes("Worker offline") && !p.thread_ts)).toHaveLength(1);
    expect(s.posts().filter((p) => /tasks? lost/i.test(p.text) && !p.thread_ts)).toHaveLength(1);
    await again.kill();
  }, 240_000);
});
