/** A real redis-server on a free loopback port, for one test file. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { spawnTracked, waitUntil } from "./processes.ts";

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (idempotent). */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server freezes without closing connections. */
  pause(): void;
  resume(): void;
}

export async function startRedis(opts: { args?: string[] } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "crisper-redis-"));
  let proc: ReturnType<typeof Bun.spawn> | null = null;

  const launch = async () => {
    const { proc: p, output: out } = spawnTracked([
      "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...(opts.args ?? []),
    ]);
    proc = p;
    await waitUntil(
      async () => {
        if (p.exitCode !== null) throw new Error(`redis-server exited with ${p.exitCode}:\n${out.text()}`);
        return ping(port);
      },
      15_000,
      `redis-server on port ${port}`,
      50,
    );
  };
  await launch();

  const stopProc = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    p.kill("SIGKILL");
    await p.exited;
  };

  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    async stop() {
      await stopProc();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopProc();
      await launch();
    },
    pause() {
      proc?.kill("SIGSTOP");
    },
    resume() {
      proc?.kill("SIGCONT");
    },
  };
}

/** PING over a raw socket: no client library, so a half-started server cannot confuse it. */
async function ping(port: number): Promise<boolean> {
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      let data = "";
      const timer = setTimeout(() => reject(new Error("timeout")), 500);
      void Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          open(s) {
            s.write("PING\r\n");
          },
          data(s, chunk) {
            data += chunk.toString();
            if (data.includes("\r\n")) {
              clearTimeout(timer);
              s.end();
              resolve(data);
            }
          },
          error(_s, e) {
            clearTimeout(timer);
            reject(e);
          },
          connectError(_s, e) {
            clearTimeout(timer);
            reject(e);
          },
        },
      }).catch(reject);
    });
    return reply.startsWith("+PONG");
  } catch {
    return false;
  }
}
