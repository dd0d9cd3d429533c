/**
 * An admin's control actions against real Celery on real Redis, with the
 * buttons in headless Chromium: requeueing a SIGKILLed worker's prefetched
 * messages (and a later kombu restore not running them again), retrying a
 * failed task with its exact arguments (refused when they are not known
 * exactly), a bulk retry, a purge; a viewer refused each; and the audit of
 * all of it. One scenario, one set of workers, for the whole file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Redis } from "ioredis";
import type { Browser, Page } from "playwright-core";
import { type CeleryProcess, sendTasks } from "../support/celery.ts";
import { launchBrowser, SCREENS } from "../support/browser.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { QUICK_INTERVALS, type Scenario, scenarios } from "../support/scenario.ts";

const ALICE = { username: "alice", password: "alice-pw" };
const BOB = { username: "bob", password: "bob-pw" };
const basic = (u: typeof ALICE) => `Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}`;
/** Short, so that the test can wait it out: kombu hands unacked messages back after this. */
const VISIBILITY_TIMEOUT_S = 20;

const servers = scenarios("actions", { store: "pglite" });
let s: Scenario<CrisperUnderTest>;
let browser: Browser;
let redis: Redis;

beforeAll(async () => {
  await servers.start();
  s = await servers.scenario(
    { ...QUICK_INTERVALS, CRISPER_AUTH: `admin:alice:${ALICE.password} viewer:bob:${BOB.password}`, BROKER_VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT_S) },
    { taskEvents: true, visibilityTimeoutS: VISIBILITY_TIMEOUT_S },
  );
  redis = new Redis(s.lab.brokerUrl);
  // A worker without result_extended, on a queue of its own: its failures leave only argsrepr behind.
  await s.worker("plain@lab", { resultExtended: false, queues: ["plain"] });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  redis?.disconnect();
  await servers.stop();
});

const api = (path: string, init: RequestInit & { as?: typeof ALICE; json?: unknown } = {}) =>
  fetch(s.crisper.url + path, {
    ...init,
    ...(init.json !== undefined ? { method: "POST", body: JSON.stringify(init.json) } : {}),
    headers: {
      ...(init.as ? { authorization: basic(init.as) } : {}),
      ...(init.json !== undefined ? { "content-type": "application/json" } : {}),
      ...(init.headers as Record<string, string>),
    },
  });
const get = async (path: string) => (await api(path, { as: ALICE })).json() as Promise<any>;
const task = async (id: string) => (await get(`/api/tasks/${id}`))?.task;
const until = (what: string, check: () => Promise<boolean>, ms = 60_000) => waitUntil(check, ms, what, 200);

async function adminPage(): Promise<{ page: Page; dialogs: string[]; errors: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ httpCredentials: ALICE, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  return { page, dialogs, errors, close: () => context.close() };
}

/** Started tasks by worker, from the task's own events. */
const starts = async (id: string) => ((await get(`/api/tasks/${id}`)).events as any[]).filter((e) => e.type === "task-started" && e.source === "events").map((e) => e.hostname);

let replacement: CeleryProcess;
let stranded: string[] = [];
let strandedDeliveredAt = 0;

describe("requeue a dead worker's stranded messages", () => {
  test("SIGKILLed holding 3 prefetched tasks: an admin's click runs them on a replacement worker, once each", async () => {
    const victim = await s.worker("victim@lab", { prefetchMultiplier: 4 });
    const [running, ...prefetched] = await sendTasks(s.lab, [
      { task: "labapp.sleepy", args: [60] },
      ...[1, 2, 3].map((i) => ({ task: "labapp.add", args: [i, 100] })),
    ]);
    stranded = prefetched;
    await until("victim holds 1 running and 3 prefetched", async () => {
      const w = (await get("/api/workers")).workers.find((x: any) => x.hostname === "victim@lab");
      return w?.active_tasks?.length === 1 && w?.reserved === 3;
    });
    // Delivered (taken into `unacked`) by now: the clock a kombu restore counts from.
    const index = await redis.zrange("unacked_index", "0", "-1", "WITHSCORES");
    strandedDeliveredAt = Math.max(...index.filter((_, i) => i % 2 === 1).map(Number));
    expect(await redis.hlen("unacked")).toBe(3);

    // Not while it lives.
    const alive = await api("/api/workers/victim@lab/requeue-stranded", { as: ALICE, json: {} });
    expect(alive.status).toBe(409);
    expect((await alive.json()).error).toContain("online");

    await victim.kill();
    replacement = await s.worker("replacement@lab", { concurrency: 2 });
    await until("prefetched_stranded open", async () =>
      ((await get("/api/alerts?status=open")).alerts as any[]).some((a) => a.kind === "prefetched_stranded" && a.subject === "victim@lab"),
    );
    // The replacement runs nothing of it meanwhile: the messages sit in `unacked`.
    for (const id of stranded) expect((await task(id)).state).toBe("RECEIVED");

    // A viewer is refused, by the API and by the form.
    const viewer = await api("/api/workers/victim@lab/requeue-stranded", { as: BOB, json: {} });
    expect(viewer.status).toBe(403);
    expect((await viewer.json()).error).toContain("viewer");
    const viewerForm = await api("/workers/victim@lab/requeue-stranded", { as: BOB, method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "csrf=x" });
    expect(viewerForm.status).toBe(403);

    // The admin sees the button on the alert, and clicks the one on the worker's page.
    const { page, dialogs, errors, close } = await adminPage();
    await page.goto(`${s.crisper.url}/alerts`);
    expect(await page.getByRole("button", { name: "Requeue stranded messages" }).count()).toBe(1);
    await page.screenshot({ path: join(SCREENS, "alert-requeue.png") });
    await page.goto(`${s.crisper.url}/workers/${encodeURIComponent("victim@lab")}`);
    const clickedAt = performance.now();
    await page.locator("main > .card").getByRole("button", { name: "Requeue stranded messages" }).click();
    await page.locator(".flash").waitFor({ timeout: 15_000 });
    expect(await page.locator(".flash").textContent()).toContain("3 stranded message(s) put back on their queues");
    expect(dialogs[0]).toContain("back on their queues");
    await page.screenshot({ path: join(SCREENS, "worker-requeued.png") });
    expect(errors).toEqual([]);
    await close();
    // Moved out of `unacked` and `unacked_index` at once.
    expect(await redis.hlen("unacked")).toBe(0);
    expect(await redis.zcard("unacked_index")).toBe(0);

    await until("the three ran on the replacement", async () => (await Promise.all(stranded.map(task))).every((t) => t.state === "SUCCESS"));
    console.log(`[requeue] three stranded tasks done ${((performance.now() - clickedAt) / 1000).toFixed(1)} s after the click`);
    for (const id of stranded) {
      expect(await starts(id)).toEqual(["replacement@lab"]);
      expect((await task(id)).result).toBe(String(100 + stranded.indexOf(id) + 1));
    }
    await until("prefetched_stranded resolved", async () =>
      ((await get("/api/alerts?status=all&kind=prefetched_stranded")).alerts as any[]).every((a) => a.status === "resolved"),
    );
    // Nothing is left to requeue: 409 with the reason.
    const again = await api("/api/workers/victim@lab/requeue-stranded", { as: ALICE, json: {} });
    expect(again.status).toBe(409);
    expect((await again.json()).error).toContain("nothing of victim@lab's is stranded");
  }, 180_000);
});

describe("retry a failed task", () => {
  test("a failed boom with result_extended, retried from its page: the same arguments, linked both ways", async () => {
    const [id] = (await sendTasks(s.lab, [{ task: "labapp.boom", args: ["card declined"], kwargs: {} }])) as [string];
    await until("boom failed", async () => (await task(id))?.state === "FAILURE");
    const { page, dialogs, errors, close } = await adminPage();
    await page.goto(`${s.crisper.url}/tasks/${id}`);
    await page.getByRole("button", { name: "Retry" }).click();
    await page.locator(".flash").waitFor({ timeout: 15_000 });
    expect(dialogs[0]).toContain("Send this task again");
    const original = await task(id);
    expect(original.retried_as).toHaveLength(1);
    const newId = original.retried_as[0] as string;
    expect(await page.locator(".flash").textContent()).toContain(newId);
    await until("the retry failed too, the same way", async () => (await task(newId))?.state === "FAILURE");
    const retry = await task(newId);
    expect(retry).toMatchObject({ name: "labapp.boom", retry_of: id, args: "('card declined',)", kwargs: "{}", queue: "celery" });
    expect(retry.exception).toContain("card declined");
    // Sent as Celery's producer sends one, task-sent event included.
    const sent = ((await get(`/api/tasks/${newId}`)).events as any[]).find((e) => e.type === "task-sent");
    expect(sent).toMatchObject({ args: "('card declined',)", queue: "celery" });
    expect(sent.hostname).toStartWith("crisper");
    await page.reload();
    expect(await page.locator(".retried-as").textContent()).toContain(newId);
    await page.screenshot({ path: join(SCREENS, "task-retried.png") });
    await page.goto(`${s.crisper.url}/tasks/${newId}`);
    expect(await page.locator("dl.facts").textContent()).toContain(`Retry of${id}`);
    expect(errors).toEqual([]);
    await close();
  }, 120_000);

  test("arguments Celery cut (repr over 1,024 characters) and result_extended off: 409, nothing sent", async () => {
    const long = "x".repeat(2000);
    const [id] = (await sendTasks(s.lab, [{ task: "labapp.boom", args: [long], queue: "plain" }])) as [string];
    await until("boom failed on plain@lab", async () => (await task(id))?.state === "FAILURE");
    const r = await api(`/api/tasks/${id}/retry`, { as: ALICE, json: {} });
    expect(r.status).toBe(409);
    const { error } = await r.json();
    expect(error).toContain("result_extended is off");
    expect(error).toContain("ending in ...");
    expect((await task(id)).retried_as).toEqual([]);
    // A viewer gets 403 before any of that.
    expect((await api(`/api/tasks/${id}/retry`, { as: BOB, json: {} })).status).toBe(403);
  }, 120_000);

  test("bulk: the count first, then a confirmation; refusals say why", async () => {
    await sendTasks(s.lab, [1, 2].map((i) => ({ task: "labapp.boom", args: [`bulk ${i}`] })));
    const since = new Date(Date.now() - 600_000).toISOString();
    await until("two more failures", async () => (await get("/api/tasks?name=labapp.boom&state=FAILURE")).tasks.length >= 5);
    const { page, errors, close } = await adminPage();
    // From the tasks page filtered to the name's failures.
    await page.goto(`${s.crisper.url}/tasks?name=labapp.boom&state=FAILURE`);
    await page.getByRole("link", { name: "Retry the failures of labapp.boom →" }).click();
    await page.locator("p.count").waitFor({ timeout: 15_000 });
    const count = Number(await page.locator("p.count strong").textContent());
    // The first boom was retried already; its retry, the cut one and the two new ones are not.
    expect(count).toBe(4);
    await page.screenshot({ path: join(SCREENS, "retry-failures.png") });
    await page.getByRole("button", { name: `Retry ${count} failures` }).click();
    await page.locator(".flash").waitFor({ timeout: 15_000 });
    expect(await page.locator(".flash").textContent()).toContain("Retried 3 of 4; 1 refused");
    expect(await page.locator("table").textContent()).toContain("ending in ...");
    expect(errors).toEqual([]);
    await close();
    // The API wants the count confirmed too: a stale one is refused.
    const stale = await api("/api/tasks/retry-failures", { as: ALICE, json: { name: "labapp.boom", since, until: new Date().toISOString(), confirm: 99 } });
    expect(stale.status).toBe(409);
  }, 120_000);
});

describe("purge, the viewer, the audit", () => {
  test("purge a queue: its name typed again, then every waiting message goes", async () => {
    await sendTasks(s.lab, [1, 2, 3].map((i) => ({ task: "labapp.add", args: [i, i], queue: "parking", priority: i * 3 })));
    expect((await api("/api/queues/parking/purge", { as: ALICE, json: { confirm: "celery" } })).status).toBe(400);
    expect((await api("/api/queues/parking/purge", { as: BOB, json: { confirm: "parking" } })).status).toBe(403);
    const r = await api("/api/queues/parking/purge", { as: ALICE, json: { confirm: "parking" } });
    expect(await r.json()).toEqual({ purged: 3 });
    expect(await redis.llen("parking")).toBe(0);
  });

  test("a later kombu restore, past the visibility timeout, does not run the requeued tasks again", async () => {
    // A message kombu should restore, as a control: unacked, delivered longer ago than the timeout.
    const [control] = (await sendTasks(s.lab, [{ task: "labapp.add", args: [7, 7], queue: "parking" }])) as [string];
    const message = (await redis.rpop("parking")) as string;
    await redis.hset("unacked", "control-tag", JSON.stringify([JSON.parse(message), "", "celery"]));
    await redis.zadd("unacked_index", String(Date.now() / 1000 - VISIBILITY_TIMEOUT_S - 5), "control-tag");
    await Bun.sleep(Math.max(0, (strandedDeliveredAt + VISIBILITY_TIMEOUT_S + 1) * 1000 - Date.now()));
    // A worker starting up runs kombu's restore_visible.
    await s.worker("late@lab");
    await until("the control restored and run", async () => (await task(control))?.state === "SUCCESS");
    for (const id of stranded) expect(await starts(id)).toEqual(["replacement@lab"]);
    await replacement.stop();
  }, 120_000);

  test("the viewer sees no action button, and /audit is refused", async () => {
    const context = await browser.newContext({ httpCredentials: BOB });
    const page = await context.newPage();
    const failed = ((await get("/api/tasks?name=labapp.boom&state=FAILURE")).tasks as any[])[0];
    await page.goto(`${s.crisper.url}/tasks/${failed.id}`);
    expect(await page.getByRole("button", { name: "Retry" }).count()).toBe(0);
    await page.goto(`${s.crisper.url}/workers/${encodeURIComponent("victim@lab")}`);
    expect(await page.getByRole("button", { name: "Requeue stranded messages" }).count()).toBe(0);
    expect(await page.locator("header").textContent()).not.toContain("Audit");
    await context.close();
    expect((await api("/api/audit", { as: BOB })).status).toBe(403);
    expect((await api("/audit", { as: BOB })).status).toBe(403);
  });

  test("the audit lists every action: who, what, target, outcome, address", async () => {
    // A revoke, a terminate and a schedule added and removed, to be listed with the rest.
    await api("/api/tasks/no-such-task/revoke", { as: ALICE, json: { terminate: false } });
    await api("/api/tasks/no-such-task/revoke", { as: ALICE, json: { terminate: true, signal: "SIGKILL" } });
    expect((await api("/api/schedules", { as: ALICE, json: { name: "nightly", task: "labapp.canary", every_s: 86400 } })).status).toBe(201);
    expect((await api("/api/schedules/nightly", { as: ALICE, method: "DELETE" })).status).toBe(200);
    const { entries } = await get("/api/audit?limit=500");
    const seen = (action: string, outcome: string) => entries.filter((e: any) => e.actor === "alice" && e.action === action && e.outcome === outcome);
    expect(seen("requeue", "ok")[0]).toMatchObject({ actor: "alice", target: "victim@lab", status: 200, ip: "127.0.0.1", detail: { requeued: 3 } });
    expect(seen("requeue", "refused").map((e: any) => e.status)).toEqual([409, 409]);
    expect(seen("retry", "ok")).toHaveLength(1);
    expect(seen("retry", "refused")[0].detail.reason).toContain("never sends a guess");
    expect(seen("retry_bulk", "ok")[0]).toMatchObject({ target: "labapp.boom", detail: { matched: 4 } });
    expect(seen("retry_bulk", "refused")).toHaveLength(1);
    expect(seen("purge", "ok")[0]).toMatchObject({ target: "parking", detail: { purged: 3 } });
    expect(seen("purge", "refused")[0].status).toBe(400);
    expect(seen("revoke", "ok")[0].target).toBe("no-such-task");
    expect(seen("terminate", "ok")[0].detail.signal).toBe("SIGKILL");
    expect(seen("schedule_add", "ok")[0].target).toBe("nightly");
    expect(seen("schedule_remove", "ok")[0].target).toBe("nightly");
    // The viewer's attempts are there too, refused before anything was done.
    const bobs = entries.filter((e: any) => e.actor === "bob");
    expect(bobs.every((e: any) => e.outcome === "refused" && e.status === 403)).toBe(true);
    expect(bobs.map((e: any) => e.action).sort()).toEqual(["purge", "requeue", "requeue", "retry"]);
    expect(bobs.find((e: any) => e.action === "retry").detail.reason).toContain("viewer");
    const { page, close } = await adminPage();
    await page.goto(`${s.crisper.url}/audit`);
    expect(await page.locator("table.audit tbody tr").count()).toBe(entries.length);
    await page.screenshot({ path: join(SCREENS, "audit.png"), fullPage: true });
    await close();
  });
});
