/**
 * Redis's own health, for the broker_* alerts and the /broker page: `INFO`
 * (server, clients, memory, stats) and `CONFIG GET maxmemory-policy`.
 *
 * Managed Redis (ElastiCache, Memorystore, Azure, many Heroku plans) refuses
 * CONFIG or renames it. `INFO memory` carries `maxmemory` and
 * `maxmemory_policy` too (Redis ≥ 4), so a refusal costs nothing but a log
 * line, once; CONFIG is not asked again.
 */
import type { Redis } from "ioredis";
import { errorText, type Logger } from "../../log.ts";
import type { BrokerHealth } from "../port.ts";
import { ensureConnected } from "./connection.ts";

/** `INFO`'s `key:value` lines (sections and blank lines skipped). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.indexOf(":");
    if (at > 0) out.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return out;
}

const num = (v: string | undefined): number | null => {
  if (v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

/** What INFO says, with the policy CONFIG gave (when it did). Pure, for tests on real INFO text. */
export function healthFromInfo(info: Map<string, string>, configPolicy: string | null, sampledAt: number): BrokerHealth {
  const maxmemory = num(info.get("maxmemory"));
  const text = (k: string, max = 64) => info.get(k)?.slice(0, max) ?? null;
  return {
    kind: "redis",
    version: text("redis_version"),
    uptimeS: num(info.get("uptime_in_seconds")),
    usedMemoryBytes: num(info.get("used_memory")),
    // 0 means no limit: Redis then grows until the OS says no, and never evicts.
    maxMemoryBytes: maxmemory ? maxmemory : null,
    maxMemoryPolicy: configPolicy ?? text("maxmemory_policy"),
    connectedClients: num(info.get("connected_clients")),
    opsPerSecond: num(info.get("instantaneous_ops_per_sec")),
    evictedKeys: num(info.get("evicted_keys")),
    memoryAlarm: null,
    diskAlarm: null,
    diskFreeBytes: null,
    sampledAt,
  };
}

export function redisHealth(commands: Redis, log: Logger): () => Promise<BrokerHealth> {
  let configAllowed = true;
  return async () => {
    await ensureConnected(commands);
    // Plain INFO: its default sections hold server, clients, memory and stats
    // (several section names in one INFO need Redis 7).
    const info = parseInfo(await commands.info());
    let policy: string | null = null;
    if (configAllowed) {
      try {
        const reply = (await commands.config("GET", "maxmemory-policy")) as unknown;
        if (Array.isArray(reply) && typeof reply[1] === "string") policy = reply[1].slice(0, 64);
      } catch (e) {
        configAllowed = false;
        log.once("redis-config-get", `Redis refused CONFIG GET maxmemory-policy (${errorText(e)}); the policy is read from INFO memory instead`);
      }
    }
    return healthFromInfo(info, policy, Date.now() / 1000);
  };
}
