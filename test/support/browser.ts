/** Debian's Chromium, headless, through playwright-core, for the page tests. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** Where the page tests leave screenshots for a person to look at. */
export const SCREENS = join(import.meta.dir, "..", "..", "test-results", "screens");

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SCREENS, { recursive: true });
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}
