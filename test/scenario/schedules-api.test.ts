/**
 * A schedule declared through the API (admins only) is watched like one in
 * BEAT_SCHEDULES: real Celery Beat runs it, then Beat is killed and
 * beat_missed names the declared schedule; deleting it resolves the alert.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type CeleryProcess, type LabSettings, startBeat, startWorker } from "../support/celery.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { scenarios } from "../support/scenario.ts";

const ADMIN = `Basic ${Buffer.from("ops:ops-pw").toString("base64")}`;
const VIEWER = `Basic ${Buffer.from("dev:dev-pw").toString("base64")}`;
const servers = scenarios("schedules", { store: "pglite" });
let crisper: CrisperUnderTest;
let lab: LabSettings;
const procs: CeleryProcess[] = [];

beforeAll(async () => {
  await servers.start();
  ({ crisper, lab } = await servers.scenario(
    { DETECT_INTERVAL_S: "0.5", BEAT_SCHEDULES: "from-config=labapp.add@60", CRISPER_AUTH: "admin:ops:ops-pw viewer:dev:dev-pw" },
    { taskEvents: true },
  ));
});

afterAll(async () => {
  for (const p of procs) await p.kill();
  await servers.stop();
});

const call = async (method: string, path: string, auth: string, body?: unknown) => {
  const res = await fetch(crisper.url + path, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};
const schedules = async () => (await call("GET", "/api/schedules", VIEWER)).body.schedules as any[];
const alerts = async (status = "all") => (await call("GET", `/api/alerts?status=${status}&kind=beat_missed`, VIEWER)).body.alerts as any[];

test("declare, watch, miss, delete: a schedule through the API", async () => {
  // Refusals first: a viewer, a bad body, a name owned by BEAT_SCHEDULES.
  expect((await call("POST", "/api/schedules", VIEWER, { name: "canary", task: "labapp.canary", every_s: 1 })).status).toBe(403);
  expect((await call("POST", "/api/schedules", ADMIN, { name: "canary", task: "labapp.canary" })).status).toBe(400);
  expect((await call("POST", "/api/schedules", ADMIN, { name: "canary", task: "labapp.canary", cron: "61 * * * *" })).status).toBe(400);
  expect((await call("POST", "/api/schedules", ADMIN, { name: "from-config", task: "labapp.add", every_s: 5 })).status).toBe(409);

  const made = await call("POST", "/api/schedules", ADMIN, { name: "canary", task: "labapp.canary", every_s: 1 });
  expect(made.status).toBe(201);
  expect(made.body.schedule).toMatchObject({ name: "canary", task: "labapp.canary", expected_interval_s: 1, source: "api" });

  procs.push(await startWorker({ ...lab, hostname: "beat-w@lab", concurrency: 1 }));
  const beat = await startBeat({ ...lab, beatIntervalS: 1 });
  procs.push(beat);
  await waitUntil(async () => (await schedules()).find((s) => s.name === "canary")?.last_seen_at !== null, 60_000, "canary seen", 200);
  // Declared, so not learned a second time under the task's name.
  expect((await schedules()).some((s) => s.name === "labapp.canary")).toBe(false);

  const killedAt = performance.now();
  await beat.kill();
  await waitUntil(async () => (await alerts("open")).some((a) => a.subject === "canary"), 60_000, "beat_missed for canary", 200);
  console.log(`[ttd] beat_missed (API-declared, 1 s interval): ${((performance.now() - killedAt) / 1000).toFixed(1)} s`);
  expect((await alerts("open")).find((a) => a.subject === "canary").details).toMatchObject({ task: "labapp.canary", source: "api" });

  expect((await call("DELETE", "/api/schedules/from-config", ADMIN)).status).toBe(409);
  expect((await call("DELETE", "/api/schedules/canary", VIEWER)).status).toBe(403);
  expect((await call("DELETE", "/api/schedules/canary", ADMIN)).body).toEqual({ deleted: "canary" });
  await waitUntil(async () => (await alerts("open")).length === 0, 30_000, "beat_missed resolved", 200);
  expect((await schedules()).some((s) => s.name === "canary")).toBe(false);
}, 180_000);
