/**
 * `crisper serve` with no broker reachable says so in one line — what it
 * tried (password hidden) and what to do — however many of its loops find
 * the broker missing (event subscription, command connection, queue
 * sampling, `enable_events`, the detector's inspection), and the overview
 * page says the same instead of an empty overview.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { spawnTracked, waitUntil } from "../support/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "crisper-no-broker-"));
let child: ReturnType<typeof spawnTracked> | undefined;

afterAll(async () => {
  child?.proc.kill("SIGTERM");
  await child?.proc.exited;
  rmSync(dir, { recursive: true, force: true });
});

test("no broker: one log line saying what was tried and what to do, and the overview says it too", async () => {
  // Nothing listens on this port: it was free a moment ago and nobody is started on it.
  const brokerPort = await freePort();
  const port = await freePort();
  child = spawnTracked([process.execPath, join(import.meta.dir, "..", "..", "src", "cli.ts"), "serve"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      BROKER_URL: `redis://:s3cret-pw@127.0.0.1:${brokerPort}/0`,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: join(dir, "data"),
      // Every loop that uses the broker gets to fail several times while we wait.
      DETECT_INTERVAL_S: "0.5",
      INSPECT_INTERVAL_S: "1",
      QUEUE_SAMPLE_INTERVAL_S: "1",
      ENABLE_EVENTS_INTERVAL_S: "1",
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const passes = async () => {
    const text = await fetch(`${url}/metrics`).then((r) => r.text(), () => "");
    return Number(/^crisper_detector_passes_total (\d+)/m.exec(text)?.[1] ?? 0);
  };
  await waitUntil(
    async () => {
      if (child?.proc.exitCode !== null) throw new Error(`crisper exited:\n${child?.output.text()}`);
      return (await passes()) >= 4;
    },
    60_000,
    "four detector passes",
    200,
  );

  const out = child.output.text();
  const complaints = out.split("\n").filter((l) => / (warn|error) /.test(l));
  expect(complaints).toHaveLength(1);
  expect(complaints[0]).toContain(`no broker at redis://:***@127.0.0.1:${brokerPort}/0`);
  expect(complaints[0]).toContain("BROKER_URL");
  expect(complaints[0]).toContain("crisper demo");
  expect(out).not.toContain("s3cret-pw");

  const page = await fetch(`${url}/`, { headers: { accept: "text/html" } }).then((r) => r.text());
  expect(page).toContain(`No broker at redis://:***@127.0.0.1:${brokerPort}/0`);
  expect(page).toContain("crisper demo");
  expect(page).not.toContain("s3cret-pw");
  // Instead of an empty overview, not on top of one.
  expect(page).not.toContain("Tasks per minute");
}, 90_000);
