/**
 * The pages in a real headless Chromium (Debian's, through playwright-core),
 * against Crisper watching real Celery workers: every page loads without
 * script errors, hostile task data shows as text and runs nothing, the
 * search form narrows the list and puts the query in the URL, and a task
 * sent after the page opened appears without a reload. Screenshots land in
 * test-results/screens/ for a person to look at.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { type LabSettings, sendTasks } from "../support/celery.ts";
import { launchBrowser, openWatched, SCREENS } from "../support/browser.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { scenarios } from "../support/scenario.ts";

const XSS = `<img src=x onerror=alert(1)> <script>alert(2)</script> naïve`;
const servers = scenarios("pages", { store: "pglite" });
let crisper: CrisperUnderTest;
let browser: Browser;
let lab: LabSettings;
const ids: Record<string, string> = {};

beforeAll(async () => {
  await servers.start();
  const s = await servers.scenario({ ENABLE_EVENTS_INTERVAL_S: "1" });
  ({ crisper, lab } = s);
  await s.worker("pages@lab", { concurrency: 2 });
  // Tasks sent once Crisper has switched the worker's task events on have a
  // whole timeline, as a person normally sees it: warm-up tasks until one
  // comes back with its worker's task-received.
  await waitUntil(
    async () => {
      const [probe] = await sendTasks(lab, [{ task: "labapp.add", args: [0, 0] }]);
      for (let i = 0; i < 20; i++) {
        if ((await crisper.get(`/api/tasks/${probe}`)).body?.task?.received_at) return true;
        await Bun.sleep(250);
      }
      return false;
    },
    60_000,
    "task events switched on in pages@lab",
    0,
  );
  const [echo, add, boom] = await sendTasks(lab, [
    { task: "labapp.echo", args: [XSS] },
    { task: "labapp.add", args: [2, 3] },
    { task: "labapp.boom", args: ["card declined"] },
  ]);
  Object.assign(ids, { echo, add, boom });
  for (const id of [echo, add, boom]) {
    await waitUntil(async () => ["SUCCESS", "FAILURE"].includes((await crisper.get(`/api/tasks/${id}`)).body?.task?.state), 60_000, `task ${id}`, 200);
  }
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await servers.stop();
});

/** A page that records script errors and dialogs (an XSS would open one). */
const open = (path: string) => openWatched(browser, crisper.url + path);

describe("pages in Chromium", () => {
  test("every page loads without script errors", async () => {
    for (const [path, name, heading] of [
      ["/", "overview", "Overview"],
      ["/tasks", "tasks", "Tasks"],
      [`/tasks/${ids.boom}`, "task-failed", "labapp.boom"],
      ["/alerts?status=all", "alerts", "Alerts"],
      ["/workers", "workers", "Workers"],
      ["/workers/pages@lab", "worker", "pages@lab"],
      ["/queues", "queues", "Queues"],
      ["/schedules", "schedules", "Schedules"],
      ["/tasks/never-seen-id", "task-never-seen", "Crisper has never seen this task"],
    ] as const) {
      const { page, errors } = await open(path);
      expect(await page.locator("h1").first().innerText()).toContain(heading);
      await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
      // The never-seen page is a 404 on purpose; Chromium logs the document's status.
      expect(errors.filter((e) => !(name === "task-never-seen" && e.includes("404")))).toEqual([]);
      await page.close();
    }
  }, 120_000);

  test("the overview shows the database's size and the retention in force", async () => {
    const { page } = await open("/");
    const line = await page.locator("#storage").innerText();
    expect(line).toMatch(/^Database: \d+(\.\d)? [KMG]?B/);
    expect(line).toContain("kept 30d after their last event, resolved alerts 90d");
    await page.close();
  });

  test("hostile arguments and results show as text and run nothing", async () => {
    const { page, errors, dialogs } = await open(`/tasks/${ids.echo}`);
    const text = await page.locator("main").innerText();
    expect(text).toContain("<img src=x onerror=alert(1)>");
    expect(text).toContain("<script>alert(2)</script>");
    expect(await page.locator("main img").count()).toBe(0);
    expect(await page.locator("main script").count()).toBe(0);
    await page.screenshot({ path: join(SCREENS, "task-hostile.png"), fullPage: true });
    await Bun.sleep(500);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("the search form narrows the list and the URL carries the query", async () => {
    const { page, errors } = await open("/tasks");
    expect(await page.locator("#task-rows tr[data-task-id]").count()).toBeGreaterThanOrEqual(3);
    await page.fill("input[name=name]", "labapp.echo");
    await page.click("form.filters button");
    await page.waitForURL(/name=labapp\.echo/);
    await waitUntil(async () => (await page.locator("#task-rows tr[data-task-id]").count()) === 1, 10_000, "narrowed list");
    expect(await page.locator("#task-rows tr[data-task-id]").first().getAttribute("data-task-id")).toBe(ids.echo as string);
    // A whole task id in the search box goes straight to that task.
    await page.fill("input[name=name]", "");
    await page.fill("input[name=q]", ids.boom as string);
    await page.click("form.filters button");
    await page.waitForURL(new RegExp(`/tasks/${ids.boom}$`));
    expect(await page.locator("h1").textContent()).toContain("labapp.boom");
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("a task sent after the page opened appears without a reload", async () => {
    const { page, errors } = await open("/tasks");
    let navigations = 0;
    page.on("framenavigated", () => navigations++);
    await Bun.sleep(500);
    const [fresh] = await sendTasks(lab, [{ task: "labapp.add", args: [40, 2] }]);
    await page.locator(`#task-rows tr[data-task-id="${fresh}"]`).waitFor({ timeout: 30_000 });
    expect(navigations).toBe(0);
    await page.screenshot({ path: join(SCREENS, "tasks-live.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
