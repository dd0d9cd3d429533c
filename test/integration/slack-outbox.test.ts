/**
 * The alert poster's outbox on the embedded database, with `post` replaced by
 * a recorder (the Slack end is covered against the stand-in in
 * slack-bot.test.ts): each alert is posted once even with two posters, a
 * failed post is kept and posted later, a new channel is not flooded with old
 * history, and an alert that resolved before it could be posted says so.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type PostMessage, createAlertPoster } from "../../bot/alert-poster.ts";
import { Links } from "../../bot/messages.ts";
import type { AlertSpec } from "../../src/alerts/kinds.ts";
import { syncAlerts } from "../../src/alerts/store.ts";
import { logger } from "../../src/log.ts";
import { type Database, sql } from "../../src/store/database.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

let store: TestStore;
let database: Database;

beforeAll(async () => {
  store = await emptyStore("outbox");
  database = store.database;
});

afterAll(() => store?.remove());

interface Posted {
  channel: string;
  text: string;
  threadTs?: string;
  ts: string;
}

/** Slack's message ids are unique in a channel; so are these, across recorders. */
let seq = 0;

function recorder() {
  const posted: Posted[] = [];
  let failing: Error | null = null;
  const post: PostMessage = async (m) => {
    await Bun.sleep(1);
    if (failing) throw failing;
    const ts = `1700000000.${String(++seq).padStart(6, "0")}`;
    posted.push({ channel: m.channel, text: m.text, threadTs: m.threadTs, ts });
    return { ts, channel: m.channel };
  };
  return {
    posted,
    post,
    fail(e: Error | null) {
      failing = e;
    },
  };
}

const poster = (channel: string, post: PostMessage) =>
  createAlertPoster({ database, post, channel, links: new Links("https://c.example"), groupThreshold: 3, pollIntervalS: 3600, log: logger("outbox-test") });

const lost = (id: string): AlertSpec => ({ kind: "task_lost", subject: id, summary: `${id} was lost`, details: { worker: "w@h", name: "app.t" } });
const offline = (host: string): AlertSpec => ({ kind: "worker_offline", subject: host, summary: `${host} died`, details: {} });

describe("Slack outbox", () => {
  test("an alert already open when a channel is set up is posted; older resolved history is not", async () => {
    await syncAlerts(database, "worker_offline", [offline("old@h")], new Date());
    await syncAlerts(database, "worker_offline", [], new Date()); // resolved: history
    await syncAlerts(database, "worker_offline", [offline("still@h")], new Date());
    const r = recorder();
    const p = poster("#a", r.post);
    await p.runOnce();
    await p.stop();
    expect(r.posted.map((x) => x.text)).toEqual([expect.stringContaining("still@h")]);
  });

  test("two posters on one channel post each alert once; many of a kind become one message", async () => {
    const r = recorder();
    const [p1, p2] = [poster("#a", r.post), poster("#a", r.post)];
    await syncAlerts(database, "task_lost", ["t1", "t2", "t3", "t4"].map(lost), new Date());
    await Promise.all([p1.runOnce(), p2.runOnce(), p1.runOnce(), p2.runOnce()]);
    expect(r.posted).toHaveLength(1);
    expect(r.posted[0]?.text).toContain("4 tasks lost on w@h");
    // Two of the four finish: one reply in the group's thread.
    await syncAlerts(database, "task_lost", ["t3", "t4"].map(lost), new Date());
    await Promise.all([p1.runOnce(), p2.runOnce()]);
    expect(r.posted).toHaveLength(2);
    expect(r.posted[1]).toMatchObject({ threadTs: r.posted[0]?.ts, text: "2 of 4 tasks lost resolved" });
    await syncAlerts(database, "task_lost", [], new Date());
    await p1.runOnce();
    expect(r.posted[2]).toMatchObject({ threadTs: r.posted[0]?.ts, text: "4 of 4 tasks lost resolved" });
    await Promise.all([p1.stop(), p2.stop()]);
  });

  test("Slack down: nothing is lost; the next poster, after a restart, posts what waited", async () => {
    const r = recorder();
    const p = poster("#a", r.post);
    r.fail(Object.assign(new Error("connect ECONNREFUSED"), { code: "slack_webapi_request_error" }));
    await syncAlerts(database, "worker_offline", [offline("gone@h")], new Date());
    await p.runOnce();
    expect(r.posted).toHaveLength(0);
    const [row] = await database.rows<{ attempts: number; last_error: string }>(
      sql`select attempts, last_error from slack_alert_posts p join alerts a on a.id = p.alert_id where a.subject = 'gone@h'`,
    );
    expect(row).toMatchObject({ attempts: 1, last_error: expect.stringContaining("Slack unreachable") });
    await p.stop();
    // Restarted (a new poster), Slack back, the backoff passed.
    await database.rows(sql`update slack_alert_posts set next_attempt_at = null`);
    const again = recorder();
    const p2 = poster("#a", again.post);
    await p2.runOnce();
    expect(again.posted.filter((x) => x.text.includes("gone@h")).map((x) => x.text)).toEqual(["[critical] Worker offline: gone@h: gone@h died"]);
    await p2.stop();
  });

  test("an alert that opened and resolved while Slack was away is posted once, saying it resolved", async () => {
    const r = recorder();
    const p = poster("#a", r.post);
    await p.runOnce(); // the channel's watermark is current
    await syncAlerts(database, "worker_offline", [offline("blip@h")], new Date());
    await syncAlerts(database, "worker_offline", [], new Date());
    await p.runOnce();
    await p.runOnce();
    const mine = r.posted.filter((x) => x.text.includes("blip@h"));
    expect(mine).toHaveLength(1);
    expect(mine[0]?.threadTs).toBeUndefined();
    await p.stop();
  });
});

describe("the poster's passes, as tests wait for them", () => {
  test("nextPass is answered by a pass that starts after it is asked, not by the one under way; stop rejects it", async () => {
    await syncAlerts(database, "worker_offline", [offline("passes@h")], new Date());
    // The first post waits at this gate, holding its pass open.
    const reached = Promise.withResolvers<void>();
    const gate = Promise.withResolvers<void>();
    const p = poster("#passes", async (m) => {
      reached.resolve();
      await gate.promise;
      return { ts: `1700000000.${String(++seq).padStart(6, "0")}`, channel: m.channel };
    });
    const first = p.runOnce();
    await reached.promise;
    let answered = false;
    const asked = p.nextPass().then(() => {
      answered = true;
    });
    gate.resolve();
    await first;
    expect(p.passes()).toBe(1);
    await Promise.resolve();
    expect(answered).toBe(false);
    await p.runOnce();
    await asked;
    expect(p.passes()).toBe(2);
    const never = p.nextPass();
    await p.stop();
    await expect(never).rejects.toThrow("stopped before its next pass");
  });
});
