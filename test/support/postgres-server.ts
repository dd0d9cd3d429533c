/**
 * A real PostgreSQL on a free loopback port, in a temporary directory.
 * PostgreSQL refuses to run as root: as root, it runs as the `postgres` user.
 */
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "./ports.ts";
import { startServer } from "./processes.ts";

export interface PostgresServer {
  /** postgres://crisper@127.0.0.1:PORT/crisper */
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stops and starts it again on the same port, data kept. */
  restart(): Promise<void>;
  /**
   * A fast shutdown (`pg_ctl stop -m fast`, what a managed PostgreSQL does on
   * failover or maintenance), data kept: clients are cut, new ones refused
   * until `startAgain`.
   */
  fastStop(): Promise<void>;
  /** Starts it again on the same port after `fastStop`. */
  startAgain(): Promise<void>;
}

export interface PostgresOptions {
  /** Benchmarks: fsync on, and tuned (shared_buffers=256MB, max_wal_size=2GB). */
  durable?: boolean;
  /**
   * Exactly these settings (`name=value`), replacing the ones above: e.g.
   * `["fsync=off"]` for a PostgreSQL left at its defaults otherwise.
   */
  settings?: string[];
}

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
  throw new Error("PostgreSQL is not installed (run test/support/install-deps.sh)");
}

function asPostgresUser(cmd: string[]): string[] {
  return process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
}

async function run(cmd: string[], what: string) {
  const p = Bun.spawn(asPostgresUser(cmd), { stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`${what} failed (${code}):\n${out}\n${err}`);
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "crisper-pg-"));
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  if (process.getuid?.() === 0) {
    const uid = Number((await Bun.$`id -u postgres`.text()).trim());
    const gid = Number((await Bun.$`id -g postgres`.text()).trim());
    chownSync(dir, uid, gid);
  }
  await run([join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "crisper", "-E", "UTF8", "--no-sync"], "initdb");
  const port = await freePort();
  // Tests trade durability for speed; benchmarks ask for the real thing.
  const chosen =
    opts.settings ?? (opts.durable ? ["shared_buffers=256MB", "max_wal_size=2GB"] : ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]);
  const settings = chosen.flatMap((s) => ["-c", s]);
  // The server's maintenance database, as the superuser the tests use.
  const admin = (o: { connect_timeout?: number } = {}) =>
    postgres({ host: "127.0.0.1", port, user: "crisper", database: "postgres", max: 1, onnotice: () => {}, ...o });
  const server = await startServer({
    name: "postgres",
    port,
    dir,
    command: asPostgresUser([join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", String(port), ...settings]),
    ready: async () => {
      const sql = admin({ connect_timeout: 1 });
      try {
        await sql`select 1`;
        return true;
      } catch {
        return false;
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
    timeoutMs: 30_000,
    stepMs: 100,
    // A fast shutdown through pg_ctl: signals to `runuser` would reach
    // postgres as SIGTERM, a "smart" shutdown that waits for every client.
    shutdown: async (p) => {
      try {
        await run([join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "20", "stop"], "pg_ctl stop");
      } catch {
        p.kill("SIGKILL");
      }
    },
  });
  const sql = admin();
  await sql.unsafe("create database crisper");
  await sql.end();
  return {
    url: `postgres://crisper@127.0.0.1:${port}/crisper`,
    port,
    stop: server.stop,
    restart: server.restart,
    fastStop: server.halt,
    startAgain: server.resume,
  };
}

/** Creates another empty database on the same server; returns its URL. */
export async function createDatabase(url: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
