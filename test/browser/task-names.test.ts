/**
 * The task-name pages in headless Chromium, over statistics rolled up from
 * tasks written through the collector's writer (no Celery needed: the events
 * are generated, with a hostile task name among them): the list sorts by its
 * column links, a name's page draws its three charts and lists its failures,
 * a task's page links to its name's page, and a name full of markup and URL
 * characters shows as text and round-trips through its link.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { buildBatch } from "../../src/collector/batch.ts";
import { logger } from "../../src/log.ts";
import { rollUpStatistics } from "../../src/stats/rollup.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { createApp } from "../../src/web/app.ts";
import { launchBrowser, openWatched, SCREENS } from "../support/browser.ts";
import { statsTraffic } from "../support/stats-traffic.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

const HOSTILE = `evil/<img src=x onerror=alert(1)>?x=1#frag %2F "quoted"`;
const NAMES = ["app.tasks.send_email", "app.tasks.resize", "app.tasks.report", HOSTILE];
const NOW = Math.floor(Date.now() / 1000);
const traffic = statsTraffic({ seed: 7, tasks: 300, start: NOW - 55 * 60, spanS: 54 * 60, names: NAMES });

let store: TestStore;
let server: ReturnType<typeof Bun.serve>;
let base: string;
let browser: Browser;

beforeAll(async () => {
  store = await emptyStore("task-names");
  for (let i = 0; i < traffic.events.length; i += 200) await writeBatch(store.database, buildBatch(traffic.events.slice(i, i + 200)));
  await rollUpStatistics(store.database);
  const app = createApp({ database: store.database, log: logger("test", () => {}) });
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  base = `http://127.0.0.1:${server.port}`;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop(true);
  await store?.remove();
});

/** A page that records script errors and dialogs (an XSS would open one). */
const open = (path: string) => openWatched(browser, base + path);

const names = (page: Page) => page.locator("table.task-names tbody tr td:first-child").allInnerTexts();

describe("task-name pages in Chromium", () => {
  test("the list shows every name with a sparkline, and sorts by its column links", async () => {
    const { page, errors, dialogs } = await open("/task-names?window=1h");
    expect(await page.locator("h1").innerText()).toBe("Task names");
    expect((await names(page)).sort()).toEqual([...NAMES].sort());
    expect(await page.locator("table.task-names svg.spark").count()).toBe(NAMES.length);
    // The busiest first by default.
    const totals = (await page.locator("table.task-names tbody tr td:nth-child(2)").allInnerTexts()).map((t) => Number.parseInt(t, 10));
    expect(totals).toEqual([...totals].sort((a, b) => b - a));
    expect(totals.reduce((a, b) => a + b, 0)).toBe(traffic.tasks.length);
    await page.screenshot({ path: join(SCREENS, "task-names.png"), fullPage: true });

    await page.getByRole("link", { name: "Task name", exact: true }).click();
    await page.waitForURL(/sort=name&dir=asc/);
    expect(await names(page)).toEqual([...NAMES].sort());
    await page.getByRole("link", { name: "Task name ▲" }).click();
    await page.waitForURL(/sort=name&dir=desc/);
    expect(await names(page)).toEqual([...NAMES].sort().reverse());
    await page.getByRole("link", { name: "Failure rate", exact: true }).click();
    await page.waitForURL(/sort=failure_rate&dir=desc/);
    const rates = (await page.locator("table.task-names tbody tr td:nth-child(4)").allInnerTexts()).map((t) => Number.parseFloat(t));
    expect(rates).toEqual([...rates].sort((a, b) => b - a));
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("a name's page draws its charts and lists its failures, which link to their tasks", async () => {
    const name = "app.tasks.resize";
    const { page, errors } = await open(`/task-names/${name}?window=1h`);
    expect(await page.locator("h1").innerText()).toBe(name);
    expect(await page.locator("figure.chart > svg").count()).toBe(3);
    // One bar per outcome per minute that had one.
    expect(await page.locator('svg[aria-label="tasks per bucket by outcome"] rect').count()).toBeGreaterThan(10);
    const failed = traffic.tasks.filter((t) => t.name === name && t.outcome === "failed");
    expect(await page.locator(".stat .n").first().innerText()).toBe(String(traffic.tasks.filter((t) => t.name === name && t.outcome === "succeeded").length));
    expect(await page.locator("table tbody tr").count()).toBe(Math.min(20, failed.length));
    await page.screenshot({ path: join(SCREENS, "task-name.png"), fullPage: true });

    await page.getByRole("link", { name: "7d" }).click();
    await page.waitForURL(/window=7d/);
    expect(await page.locator("figure.chart > svg").count()).toBe(3);
    await page.screenshot({ path: join(SCREENS, "task-name-7d.png"), fullPage: true });

    // A failure's link opens its task; the task's name links back here.
    await page.locator("table tbody tr td a").first().click();
    await page.waitForURL(/\/tasks\//);
    await page.locator("h1 a").click();
    await page.waitForURL(new RegExp(`/task-names/${name}$`));
    expect(await page.locator("h1").innerText()).toBe(name);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("a hostile task name shows as text, runs nothing, and its link finds its page", async () => {
    const { page, errors, dialogs } = await open("/task-names?window=1h");
    await page.getByRole("link", { name: HOSTILE }).click();
    await page.waitForURL(/\/task-names\/evil%2F/);
    expect(await page.locator("h1").innerText()).toBe(HOSTILE);
    expect(await page.locator("main img").count()).toBe(0);
    expect(await page.locator("figure.chart > svg").count()).toBe(3);
    await page.screenshot({ path: join(SCREENS, "task-name-hostile.png"), fullPage: true });
    await Bun.sleep(300);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
