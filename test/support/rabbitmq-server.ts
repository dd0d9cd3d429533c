/**
 * A real RabbitMQ (Debian's rabbitmq-server 3.10) on free loopback ports, for
 * one test file: its own node name, data and log directories, config file
 * and Erlang cookie, so it never meets a system node or another test's.
 * When the tests run as root it runs as the `rabbitmq` user, as Debian's
 * service does (the node refuses nothing as root, but its files must belong
 * to the user that runs it). It is up in about 5 s.
 */
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { spawnTracked, waitUntil } from "./processes.ts";

const RABBITMQ_BIN = "/usr/lib/rabbitmq/bin";

export interface RabbitServer {
  /** `amqp://guest:guest@127.0.0.1:<port>//`: the default vhost, as Celery spells it. */
  url: string;
  port: number;
  /** The management plugin's HTTP API, `http://guest:guest@127.0.0.1:<port>` (RABBITMQ_MANAGEMENT_URL). */
  managementUrl: string;
  /** Runs `rabbitmqctl <args>` against this node; resolves with its output. */
  ctl(...args: string[]): Promise<string>;
  /** Stops the node and removes its files (idempotent). */
  stop(): Promise<void>;
  /** Stops the node and starts it again on the same ports, data kept. */
  restart(): Promise<void>;
}

export interface RabbitOptions {
  /** rabbitmq.conf's `consumer_timeout`, ms (RabbitMQ's default: 1,800,000). */
  consumerTimeoutMs?: number;
}

/** Process groups of running nodes, killed if the test process exits first. */
const running = new Set<number>();
process.on("exit", () => {
  for (const pgid of running) killGroup(pgid);
});

function killGroup(pgid: number) {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {}
}

/** Whether this process is root, so the node must run as `rabbitmq`. */
const asRoot = process.getuid?.() === 0;

/** Gives a path, and everything below it, to the `rabbitmq` user. */
function chownTree(path: string, uid: number, gid: number) {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

async function rabbitIds(): Promise<{ uid: number; gid: number }> {
  const out = await new Response(Bun.spawn(["id", "-u", "rabbitmq"]).stdout).text();
  const gidOut = await new Response(Bun.spawn(["id", "-g", "rabbitmq"]).stdout).text();
  const uid = Number(out.trim());
  const gid = Number(gidOut.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || out.trim() === "") throw new Error("no `rabbitmq` user: install rabbitmq-server (test/support/install-deps.sh)");
  return { uid, gid };
}

export async function startRabbit(opts: RabbitOptions = {}): Promise<RabbitServer> {
  const [port, distPort, managementPort] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "crisper-rabbitmq-"));
  const nodename = `crisper-${port}@localhost`;
  const config = join(dir, "rabbitmq.conf");
  const plugins = join(dir, "enabled_plugins");
  writeFileSync(
    config,
    [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      `management.tcp.port = ${managementPort}`,
      "management.tcp.ip = 127.0.0.1",
      // guest may connect from anywhere; here that is still only loopback.
      "loopback_users = none",
      `consumer_timeout = ${opts.consumerTimeoutMs ?? 1_800_000}`,
      // The management API's figures every second, not every 5 s: tests wait less.
      "collect_statistics_interval = 1000",
      // A shared test machine's disk may be nearly full; the node must not block publishers over it.
      "disk_free_limit.absolute = 1MB",
      "",
    ].join("\n"),
  );
  writeFileSync(plugins, "[rabbitmq_management].\n");
  for (const d of ["mnesia", "log"]) mkdirSync(join(dir, d));
  const ids = asRoot ? await rabbitIds() : null;
  if (ids) chownTree(dir, ids.uid, ids.gid);

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    // The Erlang cookie is $HOME/.erlang.cookie: this node's own, created at first start.
    HOME: dir,
    LANG: "C.UTF-8",
    RABBITMQ_NODENAME: nodename,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
  };
  /** A command as the node's user, in its own process group (setsid), with its environment. */
  const command = (bin: string, args: string[]) => [
    "setsid",
    ...(asRoot ? ["runuser", "-u", "rabbitmq", "--"] : []),
    "env",
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    join(RABBITMQ_BIN, bin),
    ...args,
  ];

  let pgid: number | null = null;
  const launch = async () => {
    const { proc, output } = spawnTracked(command("rabbitmq-server", []), { cwd: dir });
    // setsid made the child a group leader: its pid is the group's id.
    pgid = proc.pid;
    running.add(proc.pid);
    await waitUntil(
      async () => {
        if (proc.exitCode !== null) throw new Error(`rabbitmq-server exited with ${proc.exitCode}:\n${output.text()}`);
        return amqpAnswers(port);
      },
      60_000,
      `rabbitmq-server on port ${port}`,
      100,
    );
    // The management listener comes up with the node, but not always before AMQP's.
    await waitUntil(
      () => fetch(`http://127.0.0.1:${managementPort}/api/overview`, { headers: { authorization: `Basic ${btoa("guest:guest")}` } }).then((r) => r.ok, () => false),
      30_000,
      `RabbitMQ management API on port ${managementPort}`,
      100,
    );
  };

  const ctl = async (...args: string[]) => {
    const p = Bun.spawn(command("rabbitmqctl", ["-n", nodename, ...args]), { cwd: dir, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} exited with ${code}: ${err || out}`);
    return out;
  };

  const stopNode = async () => {
    const group = pgid;
    pgid = null;
    if (group === null) return;
    // A clean stop writes nothing we need; a kill of the whole group is
    // quicker and cannot hang (the Erlang VM, epmd aside, is in this group).
    killGroup(group);
    running.delete(group);
    await waitUntil(async () => !(await amqpAnswers(port)), 15_000, `rabbitmq-server on port ${port} to stop`, 100);
  };

  await launch();
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}//`,
    port,
    managementUrl: `http://guest:guest@127.0.0.1:${managementPort}`,
    ctl,
    async stop() {
      await stopNode();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopNode();
      await launch();
    },
  };
}

/**
 * Whether the node speaks AMQP on `port`: it answers the protocol header
 * with a frame (connection.start). A bare TCP accept is not enough, and no
 * client library is used, so a half-started node cannot confuse it.
 */
async function amqpAnswers(port: number): Promise<boolean> {
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1000);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      void Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          open(s) {
            s.write(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
          },
          data(s, chunk) {
            // Frame type 1: a method frame, here connection.start. Settled
            // before end(), which may report the close at once.
            done(chunk[0] === 1);
            s.end();
          },
          close() {
            done(false);
          },
          error() {
            done(false);
          },
          connectError() {
            done(false);
          },
        },
      }).catch(() => done(false));
    });
  } catch {
    return false;
  }
}
