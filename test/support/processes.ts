/**
 * Child processes started by tests: all killed when the test process exits,
 * even on a crash, so no server outlives its test run.
 */
import { rmSync } from "node:fs";
import type { Subprocess } from "bun";

const children = new Set<Subprocess>();

function killAll() {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
  children.clear();
}
process.on("exit", killAll);
for (const s of ["SIGINT", "SIGTERM"] as const) {
  process.on(s, () => {
    killAll();
    process.exit(130);
  });
}

export function track<T extends Subprocess>(p: T): T {
  children.add(p);
  void p.exited.then(() => children.delete(p));
  return p;
}

/** Calls `onLine` with each line of a child's output as it arrives, and with a last line left without its newline. */
export async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    partial += decoder.decode(value, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  if (partial) onLine(partial);
}

/** Keeps the last lines a process printed, for error messages. */
export class OutputTail {
  private lines: string[] = [];
  private listeners: ((line: string) => void)[] = [];
  constructor(private readonly max = 200) {}

  async pipe(stream: ReadableStream<Uint8Array> | null | undefined) {
    if (stream) await forEachLine(stream, (line) => this.add(line));
  }

  private add(line: string) {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
    for (const l of this.listeners) l(line);
  }

  /** Resolves when a line matches (or one already did). */
  waitFor(re: RegExp, timeoutMs: number, what: string): Promise<void> {
    if (this.lines.some((l) => re.test(l))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not ready after ${timeoutMs} ms. Last output:\n${this.text()}`)), timeoutMs);
      this.listeners.push((line) => {
        if (re.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  text(): string {
    return this.lines.slice(-40).join("\n");
  }
}

export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, stepMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(stepMs);
  }
}

/** Starts a child that is killed with the test process, keeping the tail of its stdout and stderr. */
export function spawnTracked(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const output = new OutputTail();
  const proc = track(Bun.spawn(cmd, { ...opts, stdout: "pipe", stderr: "pipe" }));
  void output.pipe(proc.stdout as ReadableStream<Uint8Array>);
  void output.pipe(proc.stderr as ReadableStream<Uint8Array>);
  return { proc, output };
}

export interface ServerProcess {
  /** Stops the server (idempotent) and removes its directory. */
  stop(): Promise<void>;
  /** Stops it if it runs, and starts it again on the same port, its files kept. */
  restart(): Promise<void>;
  /** Stops it (its `shutdown`), files kept, until `resume`. */
  halt(): Promise<void>;
  /** Starts it again on the same port after `halt`; nothing when it runs. */
  resume(): Promise<void>;
  /** Signals the running server (SIGSTOP / SIGCONT freeze it without closing connections). */
  signal(signal: "SIGSTOP" | "SIGCONT"): void;
}

/**
 * A server for the tests (redis-server, PostgreSQL): `command` is started,
 * killed with the test process, and `ready` is polled until the server
 * answers; exiting before that fails with its last output. `shutdown` stops
 * it (SIGKILL when not given); `dir` holds its files.
 */
export async function startServer(o: {
  name: string;
  port: number;
  dir: string;
  command: string[];
  ready: () => Promise<boolean>;
  timeoutMs: number;
  stepMs: number;
  shutdown?: (proc: Subprocess) => Promise<void>;
}): Promise<ServerProcess> {
  let proc: Subprocess | null = null;
  const launch = async () => {
    const { proc: p, output } = spawnTracked(o.command);
    proc = p;
    await waitUntil(
      async () => {
        if (p.exitCode !== null) throw new Error(`${o.name} exited with ${p.exitCode}:\n${output.text()}`);
        return o.ready();
      },
      o.timeoutMs,
      `${o.name} on port ${o.port}`,
      o.stepMs,
    );
  };
  const stopProc = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    if (o.shutdown) await o.shutdown(p);
    else p.kill("SIGKILL");
    await p.exited;
  };
  await launch();
  return {
    async stop() {
      await stopProc();
      rmSync(o.dir, { recursive: true, force: true });
    },
    async restart() {
      await stopProc();
      await launch();
    },
    halt: stopProc,
    async resume() {
      if (!proc) await launch();
    },
    signal(signal) {
      proc?.kill(signal);
    },
  };
}
