/** Debian's Chromium, headless, through playwright-core, for the page tests. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";

/** Where the page tests leave screenshots for a person to look at. */
export const SCREENS = join(import.meta.dir, "..", "..", "test-results", "screens");

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SCREENS, { recursive: true });
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/**
 * Opens `url` in a new page that records script errors (uncaught, and
 * console errors) and dialogs, dismissing them: a page that opens one shows
 * an injected script ran.
 */
export async function openWatched(browser: Browser, url: string): Promise<{ page: Page; errors: string[]; dialogs: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = scriptErrors(page);
  const dialogs: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(url, { waitUntil: "load" });
  return { page, errors, dialogs };
}

/** The page's script errors from now on: uncaught ones and console errors. */
export function scriptErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return errors;
}

/**
 * Records every Content-Security-Policy violation the documents the page
 * loads from now on report; the returned function reads the current one's.
 */
export async function cspViolations(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    Object.assign(window, { cspViolations: seen });
    document.addEventListener("securitypolicyviolation", (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return async () => {
    const seen: unknown = await page.evaluate(() => Reflect.get(window, "cspViolations"));
    return Array.isArray(seen) ? seen.map(String) : [];
  };
}
