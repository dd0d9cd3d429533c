/**
 * Crisper itself, started in-process exactly as `crisper serve` starts it
 * (same config parsing, same run()), on a free port.
 */
import { join } from "node:path";
import { parseConfig } from "../../src/config.ts";
import { freePort } from "./ports.ts";
import { type OutputTail, spawnTracked, waitUntil } from "./processes.ts";
import { setLogLevel } from "../../src/log.ts";
import type { Detector } from "../../src/detect/index.ts";
import { type Running, run } from "../../src/processes.ts";

export interface CrisperUnderTest extends Running {
  url: string;
  /** Always there (`serve` collects): tests wait on its passes (`nextPass`). */
  detector: Detector;
  get<T = any>(path: string): Promise<{ status: number; body: T }>;
}

export async function startCrisper(env: Record<string, string>): Promise<CrisperUnderTest> {
  const parsed = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env });
  if ("error" in parsed) throw new Error(parsed.error);
  setLogLevel(parsed.config.LOG_LEVEL);
  const running = await run(parsed.config, { collect: true, web: true, bot: true });
  const url = running.url as string;
  const detector = running.detector;
  if (!detector) throw new Error("crisper serve started no detector");
  return Object.assign(running, {
    url,
    detector,
    async get(path: string) {
      const res = await fetch(url + path);
      return { status: res.status, body: await res.json() };
    },
  });
}

export interface CrisperProcess {
  url: string;
  get<T = any>(path: string): Promise<{ status: number; body: T }>;
  /** SIGSTOP / SIGCONT: the whole process freezes, sockets stay open. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  output: OutputTail;
}

/** `crisper serve` as its own process, for what only a process can show (freezing it). */
export async function startCrisperProcess(env: Record<string, string>): Promise<CrisperProcess> {
  const port = await freePort();
  const { proc, output } = spawnTracked([process.execPath, join(import.meta.dir, "..", "..", "src", "cli.ts"), "serve"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (proc.exitCode !== null) throw new Error(`crisper exited with ${proc.exitCode}:\n${output.text()}`);
      return fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    },
    60_000,
    "crisper serve",
    100,
  );
  return {
    url,
    output,
    async get(path: string) {
      const res = await fetch(url + path);
      return { status: res.status, body: await res.json() };
    },
    pause: () => proc.kill("SIGSTOP"),
    resume: () => proc.kill("SIGCONT"),
    async stop() {
      proc.kill("SIGCONT");
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}
