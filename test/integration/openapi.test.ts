/**
 * GET /api/openapi.json and /api/docs against a real server: every route the
 * app serves under /api is in the document, the document is valid OpenAPI
 * 3.1 (checked against the OpenAPI Initiative's own schema, vendored in
 * test/fixtures), its schemas are valid JSON Schema 2020-12, and real
 * answers of every operation — errors included — validate against it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { createBroker } from "../../src/broker/create.ts";
import type { BrokerPort } from "../../src/broker/port.ts";
import type { OpenApiDocument, Operation } from "../../src/api/openapi.ts";
import { logger } from "../../src/log.ts";
import { startRedis, type RedisServer } from "../support/redis-server.ts";
import { DUP, FLAKY, type ServedStore, servedStore } from "../support/served-store.ts";

const ADMIN = "admin:ada:secret-1";
const adminHeaders = { authorization: `Basic ${Buffer.from("ada:secret-1").toString("base64")}`, "content-type": "application/json" };

let redis: RedisServer;
let broker: BrokerPort;
let served: ServedStore;
let doc: OpenApiDocument;

/** A validator for OpenAPI documents and the JSON Schemas inside them. */
function newAjv() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  // A format the OpenAPI schema names for content types; not one this test checks.
  ajv.addFormat("media-range", true);
  return ajv;
}

/**
 * The OpenAPI 3.1 schema as published, with one change: its `$dynamicRef:
 * "#meta"` (a hook for other JSON Schema dialects; its default target is
 * `$defs/schema`) becomes a plain `$ref` to that default, which Ajv
 * resolves reliably (its $dynamicRef support does not follow this use).
 */
function openApiSchemaValidator() {
  const text = readFileSync(join(import.meta.dir, "..", "fixtures", "openapi-3.1-schema.json"), "utf8");
  const schema = JSON.parse(text.replaceAll('"$dynamicRef": "#meta"', '"$ref": "#/$defs/schema"'));
  return newAjv().compile(schema);
}

beforeAll(async () => {
  redis = await startRedis();
  broker = createBroker({ brokerUrl: redis.url, log: logger("broker", () => {}) });
  served = await servedStore("openapi", { auth: ADMIN, broker });
  const res = await fetch(`${served.url}/api/openapi.json`, { headers: adminHeaders });
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDocument;
});

afterAll(async () => {
  await served?.stop();
  await broker?.close();
  await redis?.stop();
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).flatMap(([method, op]) => (op ? [{ path, method, op: op as Operation }] : [])),
  );

describe("the document", () => {
  test("every route the app serves under /api is documented, and every documented one is served", () => {
    const served_ = new Set(
      served.app.routes
        .filter((r) => r.method !== "ALL" && r.path.startsWith("/api/"))
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`),
    );
    const documented = new Set(operations().map((o) => `${o.method} ${o.path}`));
    expect(served_.size).toBeGreaterThan(8);
    expect([...served_].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !served_.has(r))).toEqual([]);
  });

  test("is valid OpenAPI 3.1, and the validator does catch a broken one", () => {
    const validate = openApiSchemaValidator();
    const ok = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);

    // Proof the check can fail: a parameter without `in`, an unknown top-level field.
    const broken = structuredClone(doc) as unknown as { paths: Record<string, { get: { parameters: { in?: string }[] } }>; extra?: boolean };
    delete broken.paths["/api/tasks"]?.get.parameters[0]?.in;
    expect(validate(broken)).toBe(false);
    expect(validate({ ...doc, extra: true })).toBe(false);
  });

  test("its schemas are valid JSON Schema 2020-12 (OpenAPI 3.1's dialect)", () => {
    const ajv = newAjv();
    const schemas = [
      ...Object.values(doc.components.schemas),
      ...operations().flatMap(({ op }) => [
        ...op.parameters.map((p) => p.schema),
        ...Object.values(op.requestBody?.content ?? {}).map((m) => m.schema),
        ...Object.values(op.responses).flatMap((r) => Object.values(r.content).map((m) => m.schema)),
      ]),
    ];
    expect(schemas.length).toBeGreaterThan(30);
    for (const schema of schemas) expect(ajv.validateSchema(schema)).toBe(true);
  });

  test("is generated from the schemas that validate requests: a query parameter says what it takes", () => {
    const list = doc.paths["/api/tasks"]?.get;
    const state = list?.parameters.find((p) => p.name === "state");
    expect(state).toMatchObject({ in: "query", required: false });
    expect(state?.description).toContain("FAILURE");
    const revoke = doc.paths["/api/tasks/{id}/revoke"]?.post;
    expect(revoke?.["x-crisper-role"]).toBe("admin");
    expect(revoke?.parameters).toEqual([expect.objectContaining({ name: "id", in: "path", required: true })]);
    expect(JSON.stringify(revoke?.requestBody)).toContain("SIGKILL");
    expect(doc.components.schemas.Task?.required).toContain("executions");
  });
});

describe("real answers validate against the document", () => {
  /** Which operation and status each request below answered, to check that every operation was tried. */
  const seen = new Set<string>();

  async function check(method: string, path: string, route: string, expected: number, body?: unknown) {
    const res = await fetch(served.url + path, { method: method.toUpperCase(), headers: adminHeaders, body: body === undefined ? undefined : JSON.stringify(body) });
    expect(res.status).toBe(expected);
    const op = doc.paths[route]?.[method as "get"];
    if (!op) throw new Error(`${method} ${route} is not in the document`);
    const response = op.responses[String(res.status)];
    if (!response) throw new Error(`${method} ${route}: ${res.status} is not documented`);
    const [type, media] = Object.entries(response.content)[0] ?? [];
    expect(res.headers.get("content-type") ?? "").toStartWith(type ?? "none");
    seen.add(`${op.operationId} ${res.status}`);
    if (type !== "application/json" || !media) return;
    const answer = await res.json();
    // The answer's schema, with the components its $refs point to.
    const validate = newAjv().compile({ ...media.schema, components: doc.components });
    const valid = validate(answer);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    return answer;
  }

  test("the reads", async () => {
    const flaky = await check("get", `/api/tasks/${FLAKY}`, "/api/tasks/{id}", 200);
    expect(flaky.task.executions.length).toBe(3);
    const dup = await check("get", `/api/tasks/${DUP}`, "/api/tasks/{id}", 200);
    expect(dup.task.alerts.map((a: { kind: string }) => a.kind)).toEqual(["duplicate_execution"]);
    const list = await check("get", "/api/tasks?limit=5", "/api/tasks", 200);
    expect(list.tasks.length).toBe(5);
    await check("get", `/api/tasks?limit=5&cursor=${list.next_cursor}`, "/api/tasks", 200);
    await check("get", "/api/tasks?state=failure&q=flaky", "/api/tasks", 200);
    const workers = await check("get", "/api/workers", "/api/workers", 200);
    expect(workers.workers.length).toBeGreaterThan(1);
    const worker = await check("get", `/api/workers/${encodeURIComponent(workers.workers[0].hostname)}`, "/api/workers/{hostname}", 200);
    expect(worker.hostname).toBe(workers.workers[0].hostname);
    const queues = await check("get", "/api/queues", "/api/queues", 200);
    expect(queues.queues).toEqual([expect.objectContaining({ name: "celery", depth: 7, unacked: 2 })]);
    const alerts = await check("get", "/api/alerts?status=all&limit=1", "/api/alerts", 200);
    expect(alerts.next_cursor).not.toBeNull();
    await check("get", "/api/schedules", "/api/schedules", 200);
    await check("get", "/api/broker", "/api/broker", 200);
    await check("get", "/api/stats?name=labapp.add&bucket=3600", "/api/stats", 200);
    await check("get", "/api/task-names", "/api/task-names", 200);
    await check("get", "/api/openapi.json", "/api/openapi.json", 200);
    await check("get", "/api/docs", "/api/docs", 200);
  });

  test("the errors", async () => {
    const never = await check("get", "/api/tasks/never-seen-id", "/api/tasks/{id}", 404);
    expect(never.hint).toContain("PENDING");
    await check("get", "/api/tasks?limit=many", "/api/tasks", 400);
    await check("get", "/api/workers/celery%40never-seen", "/api/workers/{hostname}", 404);
    await check("get", "/api/stats?bucket=7", "/api/stats", 400);
    await check("get", "/api/alerts?kind=nope", "/api/alerts", 400);
    await check("post", `/api/tasks/${FLAKY}/revoke`, "/api/tasks/{id}/revoke", 400, { terminate: "yes" });
    await check("delete", "/api/schedules/no-such-schedule", "/api/schedules/{name}", 404);
    const anonymous = await fetch(`${served.url}/api/workers`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toHaveProperty("error");
  });

  test("the actions", async () => {
    // No worker listens on this broker: the revoke is sent, and nobody acknowledges it.
    const revoked = await check("post", `/api/tasks/${FLAKY}/revoke`, "/api/tasks/{id}/revoke", 200, { terminate: true, signal: "sigkill" });
    expect(revoked).toMatchObject({ known: true, signal: "SIGKILL", acknowledged_by: [] });
    await check("post", "/api/schedules", "/api/schedules", 201, { name: "hourly", task: "labapp.report", every_s: 3600 });
    await check("post", "/api/schedules", "/api/schedules", 400, { name: "both", task: "labapp.report", every_s: 3600, cron: "0 * * * *" });
    await check("delete", "/api/schedules/hourly", "/api/schedules/{name}", 200);
    await check("post", "/api/tasks/never-seen-id/retry", "/api/tasks/{id}/retry", 404, {});
    await check("post", `/api/tasks/${DUP}/retry`, "/api/tasks/{id}/retry", 409, {});
    const since = new Date(0).toISOString();
    const until = new Date().toISOString();
    await check("post", "/api/tasks/retry-failures", "/api/tasks/retry-failures", 409, { name: "labapp.nothing", since, until, confirm: 3 });
    await check("post", "/api/workers/celery%40never-seen/requeue-stranded", "/api/workers/{hostname}/requeue-stranded", 404, {});
    await check("post", "/api/queues/celery/purge", "/api/queues/{name}/purge", 400, { confirm: "other" });
    const purged = await check("post", "/api/queues/celery/purge", "/api/queues/{name}/purge", 200, { confirm: "celery" });
    expect(purged.purged).toBeGreaterThanOrEqual(0);
    const audit = await check("get", "/api/audit?limit=50", "/api/audit", 200);
    expect(audit.entries.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(["terminate", "schedule_add", "schedule_remove", "retry", "purge"]));
  });

  test("every operation was answered and checked", () => {
    const answered = new Set([...seen].map((s) => s.split(" ")[0]));
    expect(operations().map((o) => o.op.operationId).filter((id) => !answered.has(id))).toEqual([]);
  });
});
