/**
 * `bun bench/footprint.ts [--binary dist/crisper] [--idle-seconds 30]`: the
 * memory of `crisper serve` on the embedded database (PGlite) with nothing to
 * watch (its broker URL points at a closed port). Two starts: on an empty
 * DATA_DIR (the database is created and migrated) and again on the same one.
 * For each: the RSS peak during start-up (VmHWM, until /readyz answers and a
 * few seconds more) and the RSS once idle.
 *
 * `--postgres` does the same against a PostgreSQL of its own (the RSS is
 * Crisper's process alone, PostgreSQL's own not counted).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../test/support/ports.ts";
import { startPostgres } from "../test/support/postgres-server.ts";

const { values: opts } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    binary: { type: "string" },
    "idle-seconds": { type: "string", default: "30" },
    postgres: { type: "boolean", default: false },
  },
});

const log = (s: string) => console.error(`[footprint] ${s}`);

function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

async function oneStart(dataDir: string, databaseUrl: string | undefined, idleSeconds: number) {
  const port = await freePort();
  const closed = await freePort();
  // CRISPER_BENCH_BUN_FLAGS: extra flags for bun (e.g. --smol), to compare.
  const flags = (process.env.CRISPER_BENCH_BUN_FLAGS ?? "").split(" ").filter(Boolean);
  const cmd = opts.binary ? [opts.binary, "serve"] : [process.execPath, ...flags, "src/cli.ts", "serve"];
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, {
    cwd: `${import.meta.dir}/..`,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      DATA_DIR: dataDir,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      BROKER_URL: `redis://127.0.0.1:${closed}/0`,
      PORT: String(port),
      LOG_LEVEL: "warn",
    },
    stdout: "ignore",
    stderr: "ignore",
  });
  let peak = 0;
  let readyS = Number.NaN;
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`crisper exited with ${proc.exitCode}`);
      peak = Math.max(peak, memory(proc.pid).hwm);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status < 500 || r.status === 503,
        () => false,
      );
      if (ok) {
        readyS = (performance.now() - t0) / 1000;
        break;
      }
      if (performance.now() - t0 > 300_000) throw new Error("crisper did not answer in 300 s");
      await Bun.sleep(50);
    }
    // The first pages and /metrics load too: what a person opening it right away costs.
    for (const path of ["/", "/tasks", "/metrics"]) await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.arrayBuffer());
    const samples: number[] = [];
    for (let s = 0; s < idleSeconds; s++) {
      await Bun.sleep(1000);
      const m = memory(proc.pid);
      peak = Math.max(peak, m.hwm);
      samples.push(m.rss);
    }
    return { readyS, peak, idle: samples.at(-1) ?? Number.NaN };
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

const idleSeconds = Number(opts["idle-seconds"]);
const dataDir = mkdtempSync(join(tmpdir(), "crisper-footprint-"));
const pg = opts.postgres ? await startPostgres() : null;
const what = `${opts.binary ? `the binary ${opts.binary}` : "bun src/cli.ts serve"} on ${pg ? "PostgreSQL" : "PGlite"}`;
try {
  const rows: string[] = [];
  for (const start of ["first start (empty DATA_DIR)", "second start"]) {
    log(`${what}: ${start}`);
    const r = await oneStart(dataDir, pg?.url, idleSeconds);
    log(`${start}: ready in ${r.readyS.toFixed(1)} s, peak RSS ${r.peak.toFixed(0)} MB, idle RSS ${r.idle.toFixed(0)} MB after ${idleSeconds} s`);
    rows.push(`| ${what}, ${start} | peak ${r.peak.toFixed(0)} MB, idle ${r.idle.toFixed(0)} MB (ready in ${r.readyS.toFixed(1)} s) |`);
  }
  console.log(["| measure | result |", "|---|---|", ...rows].join("\n"));
} finally {
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
