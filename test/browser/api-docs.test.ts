/**
 * /api/docs in headless Chromium: the API's operations render under the
 * Content-Security-Policy without one violation or script error, and a
 * response schema opens. Screenshot: test-results/screens/api-docs.png.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { API } from "../../src/api/registry.ts";
import { cspViolations, launchBrowser, SCREENS, scriptErrors } from "../support/browser.ts";
import { type ServedStore, servedStore } from "../support/served-store.ts";

let served: ServedStore;
let browser: Browser;

beforeAll(async () => {
  served = await servedStore("api-docs");
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await served?.stop();
});

test("every operation is on the page, under the CSP, and its answer's schema opens", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = scriptErrors(page);
  const violations = await cspViolations(page);
  const res = await page.goto(`${served.url}/api/docs`, { waitUntil: "load" });
  expect(res?.status()).toBe(200);

  const headings = await page.locator("section.card h2").allTextContents();
  expect(headings.length).toBe(Object.keys(API).length);
  expect(headings.join("\n")).toContain("GET /api/tasks/{id}");
  expect(headings.join("\n")).toContain("POST /api/tasks/{id}/revoke · admin");

  const task = page.locator("section#getTask");
  await expect(task.locator("td.mono").first().textContent()).resolves.toContain("id *");
  await task.locator("summary", { hasText: "200" }).click();
  await expect(task.locator("pre").first().textContent()).resolves.toContain("#/components/schemas/Task");

  await page.screenshot({ path: join(SCREENS, "api-docs.png"), fullPage: false });
  expect(await violations()).toEqual([]);
  expect(errors).toEqual([]);
  await page.close();
});
