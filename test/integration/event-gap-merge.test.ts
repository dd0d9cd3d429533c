/**
 * The event_gap check on the embedded database, with the stream's record and
 * the clock in the test's hands: interruptions extend one alert, which
 * resolves once after the steady window; a Crisper restart carries on with
 * the same alert; a pass with nothing new writes nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { AlertChanges } from "../../src/alerts/store.ts";
import { listAlerts } from "../../src/alerts/store.ts";
import type { StreamGap } from "../../src/collector/collector.ts";
import { createDetector, DEFAULT_DETECT_CONFIG } from "../../src/detect/index.ts";
import { logger } from "../../src/log.ts";
import type { Database } from "../../src/store/database.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

let store: TestStore;
let database: Database;

beforeAll(async () => {
  store = await emptyStore("gap-merge");
  database = store.database;
});

afterAll(() => store?.remove());

const T0 = 1_800_000_000;
const MERGE_S = 600;

/** A detector process: its own stream record, stream state and change log. */
function crisperProcess() {
  const gaps: StreamGap[] = [];
  let upSince: number | null = T0 - 3600;
  const changes: AlertChanges[] = [];
  const detector = createDetector({
    database,
    broker: null,
    config: { ...DEFAULT_DETECT_CONFIG, eventGapMergeS: MERGE_S },
    log: logger("detect"),
    gaps: () => gaps,
    streamUpSince: () => upSince,
    onChanges: (c) => changes.push(c),
  });
  return {
    detector,
    changes,
    cut(at: number, reason = "broker: connection closed") {
      gaps.push({ from: at, to: null, reason });
      upSince = null;
    },
    /** The stream drops without a gap being recorded (a broker unreachable at start). */
    down() {
      upSince = null;
    },
    back(at: number) {
      const open = gaps.at(-1);
      if (open) open.to = at;
      upSince = at;
    },
    /** Opened, updated and resolved event_gap alerts, in all. */
    counts() {
      const of = (k: keyof AlertChanges) => changes.flatMap((c) => c[k]).filter((a) => a.kind === "event_gap").length;
      return { opened: of("opened"), updated: of("updated"), resolved: of("resolved") };
    },
  };
}

const gapAlerts = () => listAlerts(database, { status: "all", kind: "event_gap" });

test("three interruptions: one alert counting them, open through the window, resolved once", async () => {
  const p = crisperProcess();
  p.cut(T0);
  await p.detector.runOnce(T0 + 1);
  let [a] = await gapAlerts();
  expect(a).toMatchObject({ status: "open", details: { cuts: 1, to: null, interrupted_since: new Date(T0 * 1000).toISOString() } });
  p.back(T0 + 3);
  await p.detector.runOnce(T0 + 4);
  // A second cut that came and went between two passes, then a third seen under way.
  p.cut(T0 + 60);
  p.back(T0 + 62);
  p.cut(T0 + 120);
  await p.detector.runOnce(T0 + 121);
  p.back(T0 + 125);
  await p.detector.runOnce(T0 + 126);
  [a] = await gapAlerts();
  expect(await gapAlerts()).toHaveLength(1);
  expect(a).toMatchObject({ status: "open", details: { cuts: 3, duration_s: 3 + 2 + 5, interrupted_since: null, to: new Date((T0 + 125) * 1000).toISOString() } });

  // Nothing new: nothing written, however many passes.
  const before = p.counts();
  for (let i = 0; i < 5; i++) await p.detector.runOnce(T0 + 130 + i);
  expect(p.counts()).toEqual(before);

  await p.detector.runOnce(T0 + 125 + MERGE_S - 1);
  expect((await gapAlerts())[0]?.status).toBe("open");
  await p.detector.runOnce(T0 + 125 + MERGE_S);
  await p.detector.runOnce(T0 + 125 + MERGE_S + 1);
  [a] = await gapAlerts();
  expect(await gapAlerts()).toHaveLength(1);
  expect(a).toMatchObject({ status: "resolved", details: { cuts: 3 } });
  expect(a?.summary).toContain("interrupted 3 times");
  expect(a?.summary).not.toContain("Resolves once");
  expect(p.counts()).toMatchObject({ opened: 1, resolved: 1 });
});

test("a Crisper restart carries on with the open alert, the interruption under way included", async () => {
  const T1 = T0 + 10_000;
  const first = crisperProcess();
  first.cut(T1);
  await first.detector.runOnce(T1 + 1);
  const [opened] = await gapAlerts();
  expect(opened).toMatchObject({ status: "open", details: { cuts: 1, to: null } });

  // Stopped while the stream was down; the next process's stream is up from T1 + 30.
  const second = crisperProcess();
  second.back(T1 + 30);
  await second.detector.runOnce(T1 + 31);
  let [a] = await gapAlerts();
  expect(a).toMatchObject({ id: opened?.id, status: "open", details: { cuts: 1, interrupted_since: null, to: new Date((T1 + 30) * 1000).toISOString() } });
  // A cut in the new process extends it.
  second.cut(T1 + 40);
  second.back(T1 + 41);
  await second.detector.runOnce(T1 + 42);
  [a] = await gapAlerts();
  expect(a).toMatchObject({ id: opened?.id, status: "open", details: { cuts: 2 } });
  await second.detector.runOnce(T1 + 41 + MERGE_S);
  [a] = await gapAlerts();
  expect(a).toMatchObject({ id: opened?.id, status: "resolved", details: { cuts: 2 } });
  expect(second.counts()).toMatchObject({ opened: 0, resolved: 1 });
});

test("never resolved while the stream is down", async () => {
  const T2 = T0 + 20_000;
  const p = crisperProcess();
  p.cut(T2);
  p.back(T2 + 1);
  await p.detector.runOnce(T2 + 2);
  // The next process cannot reach the broker: no gap of its own, no stream.
  const q = crisperProcess();
  q.down();
  await q.detector.runOnce(T2 + 1 + MERGE_S + 5);
  expect((await gapAlerts())[0]?.status).toBe("open");
  q.back(T2 + MERGE_S + 10);
  await q.detector.runOnce(T2 + MERGE_S + 11);
  expect((await gapAlerts())[0]?.status).toBe("resolved");
});
