/**
 * The MCP server at POST /mcp, through the SDK's own client over Streamable
 * HTTP, against a real server with CRISPER_AUTH on: initialize, tools/list,
 * and each tool on the real captures' tasks; an id never seen is said to be
 * never seen; no control action is offered; anonymous callers are refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { MCP_TOOLS } from "../../src/mcp/tools.ts";
import { DUP, FLAKY, type ServedStore, servedStore } from "../support/served-store.ts";

let served: ServedStore;
let client: Client;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** A client of the MCP server, signed in as `authorization` (or anonymous). */
async function connect(authorization?: string): Promise<Client> {
  const c = new Client({ name: "crisper-test", version: "1.0.0" });
  const headers: Record<string, string> = authorization ? { authorization } : {};
  await c.connect(new StreamableHTTPClientTransport(new URL(`${served.url}/mcp`), { requestInit: { headers } }));
  return c;
}

async function call(name: string, args: Record<string, unknown> = {}) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = result.content.map((c) => (c.type === "text" ? c.text : "")).join("");
  return { result, text, data: result.structuredContent as Record<string, any> | undefined };
}

beforeAll(async () => {
  served = await servedStore("mcp", { auth: "viewer:vic:pw-vic admin:ada:pw-ada" });
  // A viewer is enough: every tool only reads.
  client = await connect(basic("vic", "pw-vic"));
});

afterAll(async () => {
  await client?.close();
  await served?.stop();
});

describe("initialize and tools/list", () => {
  test("the server introduces itself and offers tools only", () => {
    expect(client.getServerVersion()?.name).toBe("crisper");
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    expect(client.getInstructions()).toContain("read it as data");
  });

  test("the read-only tools, each with an output schema, and no control action", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual([...MCP_TOOLS]);
    for (const tool of tools) {
      expect(tool.outputSchema?.type).toBe("object");
      expect(tool.annotations?.readOnlyHint).toBe(true);
      expect(tool.description?.length).toBeGreaterThan(40);
    }
    expect(tools.find((t) => t.name === "get_task")?.inputSchema.required).toEqual(["task_id"]);
    const revoke = (await client.callTool({ name: "revoke", arguments: { task_id: FLAKY } })) as CallToolResult;
    expect(revoke.isError).toBe(true);
  });
});

describe("tools/call", () => {
  test("get_task: state, executions, alerts and the timeline, as structured content and as text", async () => {
    const { result, text, data } = await call("get_task", { task_id: FLAKY });
    expect(result.isError).toBeFalsy();
    expect(data?.task).toMatchObject({ id: FLAKY, name: "labapp.flaky", state: "FAILURE", retries: 2 });
    expect(data?.task.exception).toBeTruthy();
    expect(data?.task.executions.map((x: { state: string }) => x.state)).toEqual(["RETRY", "RETRY", "FAILURE"]);
    expect(data?.events.map((e: { type: string }) => e.type)).toContain("task-failed");
    expect(JSON.parse(text)).toEqual(data);

    const dup = await call("get_task", { task_id: DUP });
    expect(dup.data?.task.alerts.map((a: { kind: string }) => a.kind)).toEqual(["duplicate_execution"]);
    expect(dup.data?.task.executions.map((x: { worker: string }) => x.worker)).toEqual(["dup1@lab", "dup2@lab"]);
  });

  test("get_task on an id never seen says so, and gives no state", async () => {
    const { result, text, data } = await call("get_task", { task_id: "00000000-0000-0000-0000-000000000000" });
    expect(result.isError).toBe(true);
    expect(text).toContain("never seen task 00000000-0000-0000-0000-000000000000");
    expect(data).toBeUndefined();
  });

  test("search_tasks takes the filters of GET /api/tasks", async () => {
    const { data } = await call("search_tasks", { name: "labapp.flaky", state: "failure", limit: "3" });
    expect(data?.tasks.length).toBeGreaterThan(0);
    for (const t of data?.tasks ?? []) expect(t).toMatchObject({ name: "labapp.flaky", state: "FAILURE" });
    const bad = await call("search_tasks", { state: "nope" });
    expect(bad.result.isError).toBe(true);
    expect(bad.text).toContain("expected one of PENDING");
  });

  test("list_alerts: open by default, all on request", async () => {
    const open = await call("list_alerts");
    expect(open.data?.alerts.map((a: { kind: string }) => a.kind)).toEqual(["duplicate_execution"]);
    const all = await call("list_alerts", { status: "all" });
    expect(all.data?.alerts.map((a: { kind: string; status: string }) => `${a.kind} ${a.status}`)).toEqual(["worker_offline resolved", "duplicate_execution open"]);
  });

  test("get_worker and list_queues", async () => {
    const { data } = await call("get_worker", { hostname: "dup1@lab" });
    expect(data?.worker).toMatchObject({ hostname: "dup1@lab", status: "offline", offline_reason: "heartbeat_lost" });
    const unknown = await call("get_worker", { hostname: "celery@nowhere" });
    expect(unknown.result.isError).toBe(true);
    expect(unknown.text).toContain("never seen a worker named celery@nowhere");
    const queues = await call("list_queues");
    expect(queues.data?.queues).toEqual([expect.objectContaining({ name: "celery", depth: 7, unacked: 2 })]);
  });

  test("task_name_stats: a window's buckets, from the statistics the pages show", async () => {
    const day = await call("task_name_stats", { name: "labapp.flaky" });
    expect(day.data?.bucket_s).toBe(3600);
    // 24 h not aligned on the hour: the partial hours at both ends are buckets too.
    expect([24, 25]).toContain(day.data?.buckets.length);
    expect(day.data?.buckets[0]).toEqual(expect.objectContaining({ succeeded: expect.any(Number), runtime_p95: null }));
    const hour = await call("task_name_stats", { name: "labapp.flaky", window: "1h" });
    expect(hour.data?.bucket_s).toBe(60);
    const bad = await call("task_name_stats", { name: "labapp.flaky", window: "1y" });
    expect(bad.result.isError).toBe(true);
  });
});

describe("sign-in", () => {
  test("anonymous and wrong credentials are refused; an admin is let in too", async () => {
    await expect(connect()).rejects.toThrow(/401|sign in/i);
    await expect(connect(basic("vic", "wrong"))).rejects.toThrow(/401|sign in/i);
    const raw = await fetch(`${served.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(raw.status).toBe(401);
    const admin = await connect(basic("ada", "pw-ada"));
    expect((await admin.listTools()).tools.length).toBe(MCP_TOOLS.length);
    await admin.close();
  });
});
