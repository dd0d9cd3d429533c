/**
 * Crisper itself, started in-process exactly as `crisper serve` starts it
 * (same config parsing, same run()), on a free port.
 */
import { parseConfig } from "../../src/config.ts";
import { setLogLevel } from "../../src/log.ts";
import { type Running, run } from "../../src/processes.ts";

export interface CrisperUnderTest extends Running {
  url: string;
  get<T = any>(path: string): Promise<{ status: number; body: T }>;
}

export async function startCrisper(env: Record<string, string>): Promise<CrisperUnderTest> {
  const parsed = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env });
  if ("error" in parsed) throw new Error(parsed.error);
  setLogLevel(parsed.config.LOG_LEVEL);
  const running = await run(parsed.config, { collect: true, web: true });
  const url = running.url as string;
  return Object.assign(running, {
    url,
    async get(path: string) {
      const res = await fetch(url + path);
      return { status: res.status, body: await res.json() };
    },
  });
}
