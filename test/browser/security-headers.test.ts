/**
 * The Content-Security-Policy in a real headless Chromium, against Crisper
 * as `crisper serve` runs it (embedded database, real Redis): the pages and
 * htmx work under it without one violation (boosted links, the filter form,
 * the live connection), markup slipped into a page cannot run a script, no
 * other site can frame a page, and a bad request is a readable 400 page.
 * Screenshots land in test-results/screens/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { cspViolations, launchBrowser, SCREENS, scriptErrors } from "../support/browser.ts";
import { type CrisperUnderTest, startCrisper } from "../support/crisper.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

let redis: RedisServer;
let crisper: CrisperUnderTest;
let browser: Browser;
let dataDir: string;

beforeAll(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), "crisper-csp-"));
  crisper = await startCrisper({ BROKER_URL: redis.url, DATA_DIR: dataDir });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await crisper?.stop();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A page that records script errors and every CSP violation the document reports. */
async function open(path: string): Promise<{ page: Page; errors: string[]; violations: () => Promise<string[]> }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = scriptErrors(page);
  const violations = await cspViolations(page);
  await page.goto(crisper.url + path, { waitUntil: "load" });
  return { page, errors, violations };
}

describe("the Content-Security-Policy in Chromium", () => {
  test("every page loads styled and with htmx running, without a violation", async () => {
    for (const path of ["/", "/tasks", "/workers", "/queues", "/schedules", "/alerts?status=all"]) {
      const { page, errors, violations } = await open(path);
      // The stylesheet applied (the header's dark background) and htmx started.
      expect(await page.locator("header").evaluate((h) => getComputedStyle(h).backgroundColor)).toBe("rgb(16, 24, 40)");
      expect(await page.evaluate(() => typeof Reflect.get(window, "htmx"))).toBe("object");
      await Bun.sleep(300);
      expect({ path, violations: await violations(), errors }).toEqual({ path, violations: [], errors: [] });
      await page.close();
    }
  }, 60_000);

  test("boosted links, the filter form and the live connection work under it", async () => {
    const { page, errors, violations } = await open("/");
    let loads = 0;
    page.on("load", () => loads++);
    await page.click("header a[href='/tasks']");
    await page.waitForURL(/\/tasks$/);
    await page.locator("form.filters").waitFor();
    await page.fill("input[name=name]", "app.nothing");
    await page.click("form.filters button");
    await page.waitForURL(/name=app\.nothing/);
    // hx-boost swapped the content: no full page load happened.
    expect(loads).toBe(0);
    // The page holds its live connection (EventSource, allowed by connect-src 'self').
    const live = await page.evaluate(async () => {
      const es = new EventSource("/live");
      const opened = await new Promise<boolean>((resolve) => {
        es.onopen = () => resolve(true);
        es.onerror = () => resolve(false);
      });
      es.close();
      return opened;
    });
    expect(live).toBe(true);
    expect(await violations()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("markup slipped into a page runs nothing, and the attempt is reported", async () => {
    const { page, violations } = await open("/tasks");
    await page.evaluate(() => {
      const main = document.querySelector("main");
      main?.insertAdjacentHTML("beforeend", `<img src="data:," onerror="window.ran = 1"><div onclick="window.ran = 2" id="clicky">x</div>`);
      const s = document.createElement("script");
      s.textContent = "window.ran = 3";
      document.body.append(s);
    });
    await page.click("#clicky");
    await Bun.sleep(300);
    expect(await page.evaluate(() => Reflect.get(window, "ran"))).toBeUndefined();
    expect((await violations()).some((v) => v.startsWith("script-src"))).toBe(true);
    await page.close();
  }, 60_000);

  test("another site cannot frame a page", async () => {
    const evil = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(`<iframe id=f src="${crisper.url}/tasks"></iframe>`, { headers: { "content-type": "text/html" } }),
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${evil.port}/`);
      await Bun.sleep(1000);
      const framed = page.frames().find((f) => f.url().startsWith(crisper.url));
      // Chromium replaces a refused frame with an error page: none of Crisper's content is in it.
      const heading = framed ? await framed.locator("h1").count().catch(() => 0) : 0;
      expect(heading).toBe(0);
      await page.close();
    } finally {
      await evil.stop(true);
    }
  }, 60_000);

  test("a bad parameter is a readable 400 page", async () => {
    const { page } = await open("/tasks?state=DONE&q=a%00b");
    expect(await page.locator("h1").innerText()).toBe("This request is not one Crisper can answer");
    expect(await page.locator("main").innerText()).toContain("expected one of");
    await page.screenshot({ path: join(SCREENS, "bad-request-400.png"), fullPage: true });
    await page.close();
  }, 60_000);
});
