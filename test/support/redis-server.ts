/** A real redis-server on a free loopback port, for one test file. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { startServer } from "./processes.ts";

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
  const server = await startServer({
    name: "redis-server",
    port,
    dir,
    command: ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...(opts.args ?? [])],
    ready: () => ping(port),
    timeoutMs: 15_000,
    stepMs: 50,
  });
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    stop: server.stop,
    restart: server.restart,
    pause: () => server.signal("SIGSTOP"),
    resume: () => server.signal("SIGCONT"),
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
