/**
 * CRISPER_AUTH and revoke, in headless Chromium against real Celery: an
 * admin's revoke from the task page terminates a really running task; a
 * viewer sees no button and is refused; no credentials, no page; and a
 * hostile site cannot make an admin's browser revoke anything.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { type LabSettings, sendTasks } from "../support/celery.ts";
import { launchBrowser, SCREENS } from "../support/browser.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { scenarios } from "../support/scenario.ts";

const ALICE = { username: "alice", password: "alice-pw" };
const BOB = { username: "bob", password: "bob pw:with colon" };
const basic = (u: { username: string; password: string }) => `Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}`;

const servers = scenarios("revoke", { store: "pglite" });
let crisper: CrisperUnderTest;
let browser: Browser;
let lab: LabSettings;

beforeAll(async () => {
  await servers.start();
  // Bob's password is stored as an argon2id hash, Alice's as text: both forms work.
  const bobHash = await Bun.password.hash(BOB.password);
  const s = await servers.scenario(
    { ENABLE_EVENTS_INTERVAL_S: "1", CRISPER_AUTH: `admin:alice:${ALICE.password} viewer:bob:${bobHash}` },
    { taskEvents: true },
  );
  ({ crisper, lab } = s);
  // A slot for each test's long task: the refused revokes leave theirs running.
  await s.worker("revoke@lab", { concurrency: 4 });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await servers.stop();
});

const api = (path: string, init: RequestInit & { as?: typeof ALICE } = {}) =>
  fetch(crisper.url + path, { ...init, headers: { ...(init.as ? { authorization: basic(init.as) } : {}), ...(init.headers as Record<string, string>) } });

async function state(id: string) {
  return (await (await api(`/api/tasks/${id}`, { as: ALICE })).json())?.task?.state as string | undefined;
}

async function runningTask(): Promise<string> {
  const [id] = await sendTasks(lab, [{ task: "labapp.sleepy", args: [120] }]);
  await waitUntil(async () => (await state(id as string)) === "STARTED", 60_000, `task ${id} STARTED`, 200);
  return id as string;
}

describe("CRISPER_AUTH and revoke", () => {
  test("no credentials: no page, no API, no revoke; health and metrics stay open", async () => {
    const page = await api("/");
    expect(page.status).toBe(401);
    expect(page.headers.get("www-authenticate")).toContain("Basic");
    expect((await api("/api/tasks")).status).toBe(401);
    expect((await api("/api/tasks/x/revoke", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(401);
    expect((await api("/api/tasks", { as: { username: "alice", password: "wrong" } })).status).toBe(401);
    expect((await api("/healthz")).status).toBe(200);
    expect((await api("/metrics")).status).toBe(200);
  });

  test("a viewer sees the task but no revoke button, and the API and the form refuse them", async () => {
    const id = await runningTask();
    const context = await browser.newContext({ httpCredentials: BOB, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${crisper.url}/tasks/${id}`);
    expect(await page.locator("h1").textContent()).toContain("labapp.sleepy");
    expect(await page.locator("header .who").textContent()).toContain("bob · viewer");
    expect(await page.getByRole("button", { name: "Revoke" }).count()).toBe(0);
    await context.close();
    const viaApi = await api(`/api/tasks/${id}/revoke`, { as: BOB, method: "POST", headers: { "content-type": "application/json" }, body: '{"terminate":true}' });
    expect(viaApi.status).toBe(403);
    expect((await viaApi.json()).error).toContain("viewer");
    const viaForm = await api(`/tasks/${id}/revoke`, { as: BOB, method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "terminate=1&csrf=x" });
    expect(viaForm.status).toBe(403);
    await Bun.sleep(1000);
    expect(await state(id)).toBe("STARTED");
  });

  test("a hostile site cannot make an admin's browser revoke, and neither can a request without the page's token", async () => {
    const id = await runningTask();
    // A page on another origin that posts a form to Crisper as soon as it loads.
    const evil = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response(
          `<form id=f method=post action="${crisper.url}/tasks/${id}/revoke"><input name=terminate value=1><input name=signal value=SIGKILL></form><script>f.submit()</script>`,
          { headers: { "content-type": "text/html" } },
        ),
    });
    try {
      const context = await browser.newContext({ httpCredentials: ALICE });
      const page = await context.newPage();
      const posted = page.waitForResponse((r) => r.url().includes("/revoke"));
      await page.goto(`http://127.0.0.1:${evil.port}/`);
      expect((await posted).status()).toBe(403);
      await context.close();
    } finally {
      await evil.stop(true);
    }
    const json = { "content-type": "application/json" };
    expect((await api(`/api/tasks/${id}/revoke`, { as: ALICE, method: "POST", headers: { ...json, origin: "https://evil.example" }, body: "{}" })).status).toBe(403);
    expect((await api(`/api/tasks/${id}/revoke`, { as: ALICE, method: "POST", headers: { "content-type": "text/plain" }, body: '{"terminate":true}' })).status).toBe(415);
    expect((await api(`/tasks/${id}/revoke`, { as: ALICE, method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "terminate=1" })).status).toBe(403);
    await Bun.sleep(1000);
    expect(await state(id)).toBe("STARTED");
  });

  test("an admin's revoke from the task page terminates the real running task", async () => {
    const id = await runningTask();
    const context = await browser.newContext({ httpCredentials: ALICE, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.goto(`${crisper.url}/tasks/${id}`);
    expect(await page.locator("header .who").textContent()).toContain("alice · admin");
    // Running: terminate is ticked already.
    expect(await page.locator('input[name="terminate"]').isChecked()).toBe(true);
    await page.screenshot({ path: join(SCREENS, "task-revoke.png"), fullPage: false });
    await page.getByRole("button", { name: "Revoke" }).click();
    await page.locator(".flash").waitFor({ timeout: 15_000 });
    expect(await page.locator(".flash").textContent()).toContain("Revoke sent, with terminate: 1 worker(s) acknowledged it");
    expect(dialogs[0]).toContain("Revoke this task?");
    expect(page.url()).toContain(`/tasks/${id}?revoked=1&terminated=1`);
    await waitUntil(async () => (await state(id)) === "REVOKED", 30_000, "REVOKED", 200);
    // The worker's own event says it was terminated (and the result backend agrees).
    await waitUntil(
      async () => ((await (await api(`/api/tasks/${id}`, { as: ALICE })).json()).events as any[]).some((e) => e.type === "task-revoked" && e.source === "events"),
      30_000,
      "task-revoked event",
      200,
    );
    const events = (await (await api(`/api/tasks/${id}`, { as: ALICE })).json()).events as any[];
    expect(events.find((e) => e.type === "task-revoked" && e.source === "events")).toMatchObject({ terminated: true });
    await page.reload();
    expect(await page.locator("h1 .state").textContent()).toBe("REVOKED");
    expect(await page.getByRole("button", { name: "Revoke" }).count()).toBe(0);
    expect(errors).toEqual([]);
    await context.close();
    // The worker itself lives on (only its pool process was signalled).
    const w = (await (await api("/api/workers", { as: ALICE })).json()).workers.find((x: any) => x.hostname === "revoke@lab");
    expect(w.status).toBe("online");
  });

  test("an admin's revoke through the API, with SIGKILL", async () => {
    const id = await runningTask();
    const r = await api(`/api/tasks/${id}/revoke`, {
      as: ALICE,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ terminate: true, signal: "SIGKILL" }),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ task_id: id, known: true, terminate: true, signal: "SIGKILL", acknowledged_by: ["revoke@lab"] });
    await waitUntil(async () => (await state(id)) === "REVOKED", 30_000, "REVOKED", 200);
  });
});
