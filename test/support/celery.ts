/**
 * Real Celery for tests: Debian's python3-celery running test/support/celery/labapp.py.
 * Debian's Celery is run as `/usr/bin/python3 -m celery` because another
 * python3 may come first on PATH.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrokerPort } from "../../src/broker/port.ts";
import { type OutputTail, spawnTracked, track, waitUntil } from "./processes.ts";

const PYTHON = "/usr/bin/python3";
const LAB_DIR = join(import.meta.dir, "celery");

export interface LabSettings {
  brokerUrl: string;
  resultBackend?: string;
  /** Celery's `worker_send_task_events`; off by default, like Celery. */
  taskEvents?: boolean;
  acksLate?: boolean;
  visibilityTimeoutS?: number;
  prefetchMultiplier?: number;
  beatIntervalS?: number;
  /** Celery's `task_time_limit`, seconds. */
  taskTimeLimitS?: number;
  rejectOnWorkerLost?: boolean;
  /** Celery's `result_expires`, seconds. */
  resultExpiresS?: number;
  /** Celery's `task_annotations` (per-task settings), e.g. `{"labapp.sleepy": {"time_limit": 7200}}`. */
  annotations?: Record<string, Record<string, unknown>>;
  /** Celery's `result_extended` (args, kwargs, name, queue in the result backend); on unless false. */
  resultExtended?: boolean;
}

function labEnv(s: LabSettings): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    LANG: "C.UTF-8",
    PYTHONPATH: LAB_DIR,
    PYTHONUNBUFFERED: "1",
    // Celery refuses to run as root with pickle enabled, and warns otherwise.
    C_FORCE_ROOT: "1",
    LAB_BROKER_URL: s.brokerUrl,
  };
  if (s.resultBackend) env.LAB_RESULT_BACKEND = s.resultBackend;
  if (s.taskEvents) env.LAB_TASK_EVENTS = "1";
  if (s.acksLate) env.LAB_ACKS_LATE = "1";
  if (s.visibilityTimeoutS !== undefined) env.LAB_VISIBILITY_TIMEOUT = String(s.visibilityTimeoutS);
  if (s.prefetchMultiplier !== undefined) env.LAB_PREFETCH = String(s.prefetchMultiplier);
  if (s.beatIntervalS !== undefined) env.LAB_BEAT_INTERVAL = String(s.beatIntervalS);
  if (s.taskTimeLimitS !== undefined) env.LAB_TIME_LIMIT = String(s.taskTimeLimitS);
  if (s.rejectOnWorkerLost) env.LAB_REJECT_ON_WORKER_LOST = "1";
  if (s.resultExpiresS !== undefined) env.LAB_RESULT_EXPIRES = String(s.resultExpiresS);
  if (s.annotations) env.LAB_ANNOTATIONS = JSON.stringify(s.annotations);
  if (s.resultExtended === false) env.LAB_RESULT_EXTENDED = "0";
  return env;
}

export interface CeleryProcess {
  /** Worker node name, e.g. `w1@lab`. */
  hostname: string;
  pid: number;
  output: OutputTail;
  /** Warm shutdown (SIGTERM): the worker sends `worker-offline`. */
  stop(): Promise<void>;
  /** SIGKILL of the main process: no goodbye, heartbeats just stop. */
  kill(): Promise<void>;
}

function wrap(hostname: string, proc: ReturnType<typeof Bun.spawn>, output: OutputTail, cleanup: () => void): CeleryProcess {
  const end = async (signal: "SIGTERM" | "SIGKILL") => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await proc.exited;
      clearTimeout(timer);
    }
    cleanup();
  };
  return { hostname, pid: proc.pid, output, stop: () => end("SIGTERM"), kill: () => end("SIGKILL") };
}

export async function startWorker(
  s: LabSettings & { hostname: string; concurrency?: number; queues?: string[]; pool?: "prefork" | "threads" | "solo" | "gevent" | "eventlet" },
): Promise<CeleryProcess> {
  const args = [
    PYTHON, "-m", "celery", "-A", "labapp", "worker",
    "-n", s.hostname,
    "-c", String(s.concurrency ?? 2),
    "-P", s.pool ?? "prefork",
    "-l", "INFO",
    "--without-gossip", "--without-mingle",
  ];
  if (s.queues?.length) args.push("-Q", s.queues.join(","));
  const { proc, output } = spawnTracked(args, { cwd: LAB_DIR, env: labEnv(s) });
  const worker = wrap(s.hostname, proc, output, () => {});
  try {
    await Promise.race([
      output.waitFor(/ ready\.$/, 60_000, `celery worker ${s.hostname}`),
      proc.exited.then((code) => {
        throw new Error(`celery worker ${s.hostname} exited with ${code}:\n${output.text()}`);
      }),
    ]);
  } catch (e) {
    await worker.kill();
    throw e;
  }
  return worker;
}

export async function startBeat(s: LabSettings & { beatIntervalS: number }): Promise<CeleryProcess> {
  const dir = mkdtempSync(join(tmpdir(), "crisper-beat-"));
  const { proc, output } = spawnTracked([PYTHON, "-m", "celery", "-A", "labapp", "beat", "-l", "INFO", "-s", join(dir, "schedule"), "--pidfile="], {
    cwd: LAB_DIR,
    env: labEnv(s),
  });
  await output.waitFor(/beat: Starting/, 60_000, "celery beat");
  return wrap("beat", proc, output, () => rmSync(dir, { recursive: true, force: true }));
}

export interface TaskRequest {
  task: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  queue?: string;
  priority?: number;
  countdown?: number;
  /** Celery's `expires`, seconds from now: a worker that takes it later discards it unrun. */
  expires?: number;
  id?: string;
}

async function runSend(s: LabSettings, lines: object[]): Promise<Record<string, string>[]> {
  const proc = track(
    Bun.spawn([PYTHON, join(LAB_DIR, "send.py")], { cwd: LAB_DIR, env: labEnv(s), stdin: "pipe", stdout: "pipe", stderr: "pipe" }),
  );
  proc.stdin.write(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  await proc.stdin.end();
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`send.py exited with ${code}:\n${err}`);
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Sends tasks through Celery's own `send_task`; returns their ids in order. */
export async function sendTasks(s: LabSettings, tasks: TaskRequest[]): Promise<string[]> {
  const replies = await runSend(s, tasks);
  return replies.map((r) => r.id as string);
}

/** Revokes through Celery's own `app.control.revoke`. */
export async function revokeTask(s: LabSettings, id: string, terminate = false): Promise<void> {
  await runSend(s, [{ revoke: id, terminate }]);
}

/**
 * A worker's answer to `ping` through the broker port, asked until it comes:
 * worker-online goes out before the worker listens on its mailbox, and a
 * broadcast in between reaches nobody (as `celery inspect ping` would find).
 */
export async function pingUntilAnswered(broker: BrokerPort, hostname: string): Promise<Record<string, unknown>> {
  let pong: Record<string, unknown> = {};
  await waitUntil(
    async () => {
      pong = await broker.call("ping", {}, { timeoutMs: 2000, destination: [hostname] });
      return Object.keys(pong).length > 0;
    },
    30_000,
    "a reply to ping",
  );
  return pong;
}
