/**
 * The detector's positive signal of a finished pass, on the embedded
 * database: what tests wait for before saying that something was *not*
 * detected. A pass answers only those who asked before it started; a failed
 * pass counts too; stopping rejects whoever still waits.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { StreamGap } from "../../src/collector/collector.ts";
import { createDetector, DEFAULT_DETECT_CONFIG } from "../../src/detect/index.ts";
import { logger } from "../../src/log.ts";
import { detectorMetrics } from "../../src/metrics.ts";
import type { Database } from "../../src/store/database.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

let store: TestStore;
let database: Database;

beforeAll(async () => {
  store = await emptyStore("passes");
  database = store.database;
});

afterAll(() => store?.remove());

/** A detector without a broker whose `gaps()` (read by the last check) runs `during` inside each pass. */
function detector(during: () => void = () => {}) {
  return createDetector({
    database,
    broker: null,
    config: { ...DEFAULT_DETECT_CONFIG, intervalS: 0.05 },
    log: logger("detect"),
    gaps: (): readonly StreamGap[] => {
      during();
      return [];
    },
    streamUpSince: () => null,
  });
}

const counted = async () => (await detectorMetrics.passes.get()).values[0]?.value ?? 0;

test("nextPass is answered by a pass that starts after it is asked, not by the one running", async () => {
  let asked: Promise<void> | null = null;
  let answered = false;
  const d = detector(() => {
    if (asked) return;
    asked = d.nextPass();
    asked.then(() => (answered = true));
  });
  const before = await counted();
  await d.runOnce();
  await Bun.sleep(0);
  expect(asked).not.toBeNull();
  expect(answered).toBe(false);
  expect(d.passes()).toBe(1);
  await d.runOnce();
  await asked;
  expect(answered).toBe(true);
  expect(d.passes()).toBe(2);
  expect(await counted()).toBe(before + 2);
});

test("the loop's passes answer nextPass; a failed pass counts and is retried", async () => {
  let failures = 1;
  const d = detector(() => {
    if (failures > 0) {
      failures--;
      throw new Error("the store went away");
    }
  });
  const failed = (await detectorMetrics.passFailures.get()).values[0]?.value ?? 0;
  const first = d.nextPass();
  d.start();
  await first;
  expect(d.passes()).toBe(1);
  expect((await detectorMetrics.passFailures.get()).values[0]?.value).toBe(failed + 1);
  await d.nextPass();
  expect(d.passes()).toBeGreaterThanOrEqual(2);
  await d.stop();
});

test("a pass run directly throws what failed, and still counts", async () => {
  const d = detector(() => {
    throw new Error("the store went away");
  });
  const waiting = d.nextPass();
  await expect(d.runOnce()).rejects.toThrow("the store went away");
  await waiting;
  expect(d.passes()).toBe(1);
});

test("stopping rejects whoever still waits for a pass", async () => {
  const d = detector();
  const waiting = d.nextPass();
  await d.stop();
  await expect(waiting).rejects.toThrow("stopped");
  expect(d.passes()).toBe(0);
});
