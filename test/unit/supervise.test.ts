/** Background loops survive what their passes throw; the process survives what nothing caught. */
import { beforeEach, expect, test } from "bun:test";
import { join } from "node:path";
import { StoreOutage } from "../../src/collector/writer.ts";
import { logger, setLogLevel } from "../../src/log.ts";
import { registry } from "../../src/metrics.ts";
import { every, guarded, superviseLoop } from "../../src/supervise.ts";

// Other test files in the same run may have raised the (process-wide) level.
beforeEach(() => setLogLevel("info"));

const capture = (name: string) => {
  const lines: string[] = [];
  return { lines, log: logger(name, (l) => lines.push(l)) };
};

async function loopErrors(loop: string): Promise<number> {
  const metric = await registry.getSingleMetric("crisper_loop_errors_total")?.get();
  return metric?.values.find((v) => v.labels.loop === loop)?.value ?? 0;
}

test("a supervised loop that throws is restarted, its error logged once with the stack", async () => {
  const { lines, log } = capture("t1");
  let runs = 0;
  await superviseLoop(
    "test-loop",
    async () => {
      runs++;
      if (runs <= 3) throw new TypeError("null is not an object");
    },
    { log, stopping: () => false, firstPauseMs: 1 },
  );
  expect(runs).toBe(4);
  const logged = lines.filter((l) => l.includes("null is not an object"));
  expect(logged.length).toBe(1);
  expect(logged[0]).toContain("restarting it");
  expect(logged[0]).toContain("supervise.test.ts"); // the stack
  expect(await loopErrors("test-loop")).toBe(3);
});

test("a supervised loop that fails while stopping is not restarted", async () => {
  const { log } = capture("t2");
  let runs = 0;
  await superviseLoop(
    "stopping-loop",
    async () => {
      runs++;
      throw new Error("down");
    },
    { log, stopping: () => runs >= 2, firstPauseMs: 1 },
  );
  expect(runs).toBe(2);
});

test("a periodic pass that throws is reported, the next pass runs, and passes never overlap", async () => {
  const { lines, log } = capture("t3");
  let passes = 0;
  let running = 0;
  let most = 0;
  const p = every(
    "periodic",
    5,
    async () => {
      passes++;
      running++;
      most = Math.max(most, running);
      await Bun.sleep(20);
      running--;
      if (passes === 1) throw new Error("first pass fails");
    },
    log,
  );
  await p.runNow();
  while (passes < 4) await Bun.sleep(5);
  await p.stop();
  expect(most).toBe(1);
  expect(lines.filter((l) => l.includes("first pass fails")).length).toBe(1);
  const after = passes;
  await Bun.sleep(50);
  expect(passes).toBe(after);
  expect(await guarded("guarded", async () => Promise.reject(new Error("no")), log)).toBe(false);
});

test("an outage is said once when it starts and once when it ends", () => {
  const { lines, log } = capture("t4");
  const outage = new StoreOutage(log, () => "12 messages in memory");
  for (let i = 0; i < 5; i++) outage.failed(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
  expect(outage.down).toBe(true);
  outage.succeeded();
  outage.succeeded();
  expect(outage.down).toBe(false);
  expect(lines.length).toBe(2);
  expect(lines[0]).toContain("cannot write to the database (connect ECONNREFUSED");
  expect(lines[0]).toContain("12 messages in memory");
  expect(lines[1]).toContain("work again after");
  expect(lines[1]).toContain("5 failed attempts");
});

test("the last resort keeps the process serving through an uncaught exception and an unhandled rejection", async () => {
  const script = `
    import { keepServingOnUncaughtErrors } from ${JSON.stringify(join(import.meta.dir, "../../src/supervise.ts"))};
    import { logger } from ${JSON.stringify(join(import.meta.dir, "../../src/log.ts"))};
    keepServingOnUncaughtErrors(logger("crisper"));
    setImmediate(() => { throw new TypeError("null is not an object (evaluating 'socket.write')"); });
    Promise.reject(new Error("nobody caught this"));
    setTimeout(() => console.log("still serving"), 200);
  `;
  const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect(code).toBe(0);
  expect(out).toContain("still serving");
  expect(err).toContain("uncaught exception");
  expect(err).toContain("socket.write");
  expect(err).toContain("unhandled promise rejection");
  expect(err).toContain("nobody caught this");
});
