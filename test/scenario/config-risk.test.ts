/**
 * Workers' configuration on real Celery 5.2 and redis-server: Crisper reads
 * each worker's settings over remote control, opens config_risk for settings
 * that duplicate work (and for nothing else), uses a worker's own visibility
 * timeout for its tasks, and shows it all on the worker's page in Chromium.
 * BROKER_VISIBILITY_TIMEOUT is 10000 here: every risk found below comes from
 * the timeouts the workers report themselves.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { WorkerAnswer } from "../../src/api/schemas.ts";
import { launchBrowser, SCREENS } from "../support/browser.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { type CeleryProcess, sendTasks } from "../support/celery.ts";
import { type DetectionScenario, timeToAlert } from "../support/detection.ts";
import { waitUntil } from "../support/processes.ts";
import { QUICK_INTERVALS, type Scenario, scenarios } from "../support/scenario.ts";

const servers = scenarios("config", { store: "postgres" });
let s: Scenario<CrisperUnderTest>;
let browser: Browser | undefined;
let risky: CeleryProcess;

beforeAll(async () => {
  await servers.start();
  // Read again every 2 s, so the memory chart has points to draw.
  s = await servers.scenario({ ...QUICK_INTERVALS, BROKER_VISIBILITY_TIMEOUT: "10000", WORKER_CONFIG_INTERVAL_S: "2" });
});

afterAll(async () => {
  await browser?.close();
  await servers.stop();
});

const alerts = async () => (await s.crisper.get("/api/alerts?status=all&limit=500")).body.alerts as any[];
const worker = async (hostname: string) => (await s.crisper.get(`/api/workers/${encodeURIComponent(hostname)}`)).body;
const until = (what: string, check: () => Promise<boolean>, ms = 60_000) => waitUntil(check, ms, what, 200);
/** What timeToAlert reads, on this file's one scenario. */
const detection = (): DetectionScenario => ({
  lab: s.lab,
  crisper: s.crisper,
  worker: (hostname, opts) => s.worker(hostname, opts),
  alerts,
  task: async (id) => (await s.crisper.get(`/api/tasks/${id}`)).body,
});

describe("workers' configuration", () => {
  test("task_time_limit=7200, late acks, visibility timeout 3600: config_risk naming both; a default worker gets nothing", async () => {
    const startedAt = performance.now();
    [risky] = await Promise.all([
      s.worker("risky@lab", { taskTimeLimitS: 7200, acksLate: true, visibilityTimeoutS: 3600, taskEvents: true }),
      s.worker("default@lab", { taskEvents: true }),
    ]);
    const { alert } = await timeToAlert(detection(), "config_risk", "risky@lab", startedAt, { label: "worker settings " });
    expect(alert).toMatchObject({ status: "open", severity: "warning" });
    expect(alert.details.settings).toEqual(["task_time_limit=7200", "task_acks_late=true", "broker_transport_options.visibility_timeout=3600"]);
    expect(alert.details.findings.map((f: any) => f.rule)).toEqual(["time_limit_beyond_visibility_timeout"]);
    expect(alert.summary).toContain('broker_transport_options = {"visibility_timeout": 9000}');

    const answer = WorkerAnswer.parse(await worker("risky@lab"));
    expect(answer.config).toMatchObject({ pool: { kind: "prefork", concurrency: 1 }, task_time_limit: 7200, task_acks_late: true, visibility_timeout_s: 3600, transport: "redis" });
    expect(answer.config_findings.map((f) => `${f.level}:${f.rule}`)).toEqual(["risk:time_limit_beyond_visibility_timeout"]);

    // The default worker: read, judged, and found sane.
    await until("default@lab judged", async () => Boolean((await worker("default@lab")).config_findings_at));
    await s.crisper.detector.nextPass();
    const plain = WorkerAnswer.parse(await worker("default@lab"));
    expect(plain.config).toMatchObject({ task_acks_late: false, task_time_limit: null, worker_prefetch_multiplier: 4 });
    expect(plain.config_findings).toEqual([]);
    expect((await alerts()).map((a) => `${a.kind} ${a.subject}`)).toEqual(["config_risk risky@lab"]);
    expect((await s.crisper.get("/api/workers/never@lab")).status).toBe(404);
  }, 120_000);

  test("a late-acked task that ran longer than its worker's own 3 s visibility timeout: config_risk, and visibility_timeout_risk by that timeout", async () => {
    await s.worker("slow@lab", { acksLate: true, visibilityTimeoutS: 3, prefetchMultiplier: 1, taskEvents: true, queues: ["slow"] });
    const startedAt = performance.now();
    const [id] = await sendTasks(s.lab, [{ task: "labapp.sleepy", args: [5], queue: "slow" }]);
    // BROKER_VISIBILITY_TIMEOUT says 10000 s; the worker's own 3 s is what applies.
    const risk = await timeToAlert(detection(), "visibility_timeout_risk", id as string, startedAt, { label: "worker's own timeout " });
    expect(risk.alert.details).toMatchObject({ visibility_timeout_s: 3 });
    const { alert } = await timeToAlert(detection(), "config_risk", "slow@lab", startedAt, { label: "observed runtime " });
    const runtime = alert.details.findings.find((f: any) => f.rule === "runtime_beyond_visibility_timeout");
    expect(runtime.tasks).toEqual(["labapp.sleepy"]);
    expect(alert.details.settings).toContain("broker_transport_options.visibility_timeout=3");
  }, 120_000);

  test("the worker's page: Configuration with the risky settings marked and the fix, and the memory chart", async () => {
    await until("two memory readings", async () => ((await worker("risky@lab")).config?.memory?.length ?? 0) >= 2);
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${s.crisper.url}/workers/${encodeURIComponent("risky@lab")}`, { waitUntil: "load" });
    expect(await page.locator("h2#configuration").innerText()).toBe("Configuration");
    const marked = await page.locator("table.settings tr.risk td.mono:first-child").allInnerTexts();
    expect(marked).toEqual(["task_acks_late", "task_time_limit", "visibility_timeout"]);
    expect(await page.locator(".finding.risk pre").first().innerText()).toContain('broker_transport_options = {"visibility_timeout": 9000}');
    expect(await page.locator('svg[aria-label="worker memory (maxrss) over time"] circle').count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(SCREENS, "worker-config.png"), fullPage: true });
    const plain = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await plain.goto(`${s.crisper.url}/workers/${encodeURIComponent("default@lab")}`, { waitUntil: "load" });
    expect(await plain.locator("table.settings tr.risk, table.settings tr.advice").count()).toBe(0);
    await plain.screenshot({ path: join(SCREENS, "worker-config-sane.png"), fullPage: true });
    expect(errors).toEqual([]);
  }, 120_000);

  test("the worker restarted with safer settings: config_risk resolves; while it was away, it stayed open", async () => {
    await risky.stop();
    await s.crisper.detector.nextPass();
    expect((await alerts()).find((a) => a.kind === "config_risk" && a.subject === "risky@lab")?.status).toBe("open");
    await s.worker("risky@lab", { taskTimeLimitS: 3000, acksLate: true, visibilityTimeoutS: 3600, taskEvents: true });
    await until("config_risk resolved", async () => (await alerts()).find((a) => a.kind === "config_risk" && a.subject === "risky@lab")?.status === "resolved");
    expect(WorkerAnswer.parse(await worker("risky@lab")).config?.task_time_limit).toBe(3000);
  }, 120_000);
});
