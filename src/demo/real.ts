/**
 * `crisper demo --real`: the same story on a real local cluster, where
 * redis-server and Celery (`python3 -m celery`) are installed. A private
 * redis-server on a free port, two workers on `celery`, one on `reports`,
 * Beat with the demo's two schedules, a producer, and Crisper pointed at it
 * all. On a loop, one worker is SIGKILLed mid-task and Beat is stopped for a
 * while. Every child is stopped on exit.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { logger, setLogLevel } from "../log.ts";
import { run } from "../processes.ts";
import { keepServingOnUncaughtErrors } from "../supervise.ts";
import { DEMO_BANNER, demoConfig, untilStopped } from "./command.ts";
import { DEMO_TIMING } from "./scenario.ts";
import { BEAT_SCHEDULE } from "./tasks.ts";

const PYTHON = "/usr/bin/python3";

/** The demo's Celery application, with the simulated cluster's task names. */
function demoApp(brokerUrl: string): string {
  const beat = BEAT_SCHEDULE.map((s) => `    ${JSON.stringify(s.name)}: {"task": ${JSON.stringify(s.task)}, "schedule": ${s.everyS}.0, "options": {"queue": ${JSON.stringify(s.queue)}}},`).join("\n");
  return `import random, time
from celery import Celery

app = Celery("shop", broker=${JSON.stringify(brokerUrl)})
app.conf.update(
    task_send_sent_event=True,
    worker_send_task_events=True,
    broker_transport_options={"visibility_timeout": ${DEMO_TIMING.visibilityTimeoutS}},
    task_default_queue="celery",
    beat_schedule={
${beat}
    },
)

class CardDeclined(Exception):
    pass

@app.task(name="shop.tasks.send_welcome_email")
def send_welcome_email(user_id):
    time.sleep(random.uniform(0.05, 0.4))
    return "sent"

@app.task(name="shop.tasks.charge_card")
def charge_card(order_id, amount_cents=0):
    time.sleep(random.uniform(0.1, 0.8))
    if random.random() < 0.12:
        raise CardDeclined("card ending 4242 was declined: insufficient funds")
    return {"status": "captured"}

@app.task(name="shop.tasks.sync_inventory", bind=True, max_retries=3)
def sync_inventory(self, sku):
    time.sleep(random.uniform(0.2, 0.6))
    if random.random() < 0.3:
        raise self.retry(exc=ConnectionError("supplier API timed out after 5.0 s"), countdown=2)
    return {"updated": random.randint(0, 40)}

@app.task(name="shop.tasks.resize_image")
def resize_image(image_id, width=640):
    time.sleep(random.uniform(0.8, 6))
    return "s3://shop-media/resized/%d.webp" % image_id

@app.task(name="shop.tasks.cleanup_sessions")
def cleanup_sessions():
    time.sleep(0.3)

@app.task(name="reports.tasks.refresh_dashboard")
def refresh_dashboard():
    time.sleep(0.8)

@app.task(name="reports.tasks.render_invoice_pdf")
def render_invoice_pdf(invoice_id):
    time.sleep(random.uniform(0.8, 2))
    return "s3://shop-invoices/%s.pdf" % invoice_id
`;
}

const PRODUCER = `import random, time
from shop import app

while True:
    r = random.random()
    if r < 0.3: app.send_task("shop.tasks.send_welcome_email", args=[random.randint(1000, 99999)])
    elif r < 0.55: app.send_task("shop.tasks.charge_card", args=[random.randint(50000, 60000)], kwargs={"amount_cents": random.randint(500, 25000)})
    elif r < 0.75: app.send_task("shop.tasks.sync_inventory", args=["SKU-%d" % random.randint(100, 999)])
    elif r < 0.9: app.send_task("shop.tasks.resize_image", args=[random.randint(1, 5000)], kwargs={"width": 1280})
    else: app.send_task("reports.tasks.render_invoice_pdf", args=["INV-%d" % random.randint(10000, 99999)], queue="reports")
    time.sleep(0.5)
`;

/** Waits (up to 10 s) until something accepts connections on the port. */
async function listening(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => {
        s.end();
        return true;
      },
      () => false,
    );
    if (ok) return true;
    await Bun.sleep(100);
  }
  return false;
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export async function runRealDemo(env: Record<string, string | undefined>, dataDir: string): Promise<number> {
  const redisServer = Bun.which("redis-server");
  const celery = Bun.spawnSync([PYTHON, "-c", "import celery"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  if (!redisServer || !celery) {
    console.error(
      `crisper demo --real: needs ${!redisServer ? "redis-server on PATH" : ""}${!redisServer && !celery ? " and " : ""}${!celery ? `Celery for ${PYTHON} (python3-celery)` : ""}; ` +
        "`crisper demo` without --real needs neither",
    );
    return 2;
  }
  const port = await freePort();
  const brokerUrl = `redis://127.0.0.1:${port}/0`;
  const parsed = demoConfig(env, dataDir, { BROKER_URL: brokerUrl });
  if ("error" in parsed) {
    console.error(`crisper demo: ${parsed.error}`);
    return 2;
  }
  setLogLevel(parsed.config.LOG_LEVEL);
  const log = logger("demo");
  keepServingOnUncaughtErrors(log);

  const appDir = join(dataDir, "celery");
  mkdirSync(appDir, { recursive: true });
  writeFileSync(join(appDir, "shop.py"), demoApp(brokerUrl));
  writeFileSync(join(appDir, "produce.py"), PRODUCER);

  const children = new Map<string, Subprocess>();
  // Whatever way this process ends, its cluster ends with it.
  const killAll = () => {
    for (const p of children.values()) if (p.exitCode === null) p.kill("SIGKILL");
  };
  process.once("exit", killAll);
  const start = (name: string, cmd: string[]) => {
    // Detached (a session of their own): a Ctrl-C in the terminal reaches Crisper alone, which
    // stops watching first and then stops them, rather than reporting their deaths as failures.
    const p = Bun.spawn(cmd, { cwd: appDir, env: { ...process.env, PYTHONPATH: appDir }, stdin: "ignore", stdout: "ignore", stderr: "ignore", detached: true });
    children.set(name, p);
    return p;
  };
  const celeryCmd = (...args: string[]) => [PYTHON, "-m", "celery", "-A", "shop", ...args];
  const worker = (name: string, queue: string) => start(name, celeryCmd("worker", "-n", name, "-Q", queue, "-c", "2", "-l", "WARNING"));
  const beat = () => start("beat", celeryCmd("beat", "-s", join(appDir, "beat-schedule"), "-l", "WARNING", "--pidfile="));

  start("redis", [redisServer, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", appDir]);
  if (!(await listening(port))) {
    console.error(`crisper demo --real: redis-server did not start on port ${port}`);
    await stopChildren(children);
    return 1;
  }
  let running: Awaited<ReturnType<typeof run>> | undefined;
  const timers: ReturnType<typeof setTimeout>[] = [];
  try {
    running = await run(parsed.config, { collect: true, web: true, bot: false }, { banner: { ...DEMO_BANNER, text: "A real local Celery cluster (crisper demo --real) on a private redis-server." } });
    worker("worker-1@%h", "celery");
    worker("worker-2@%h", "celery");
    worker("reports-1@%h", "reports");
    beat();
    start("producer", [PYTHON, join(appDir, "produce.py")]);
    console.log(`\nCrisper demo (real cluster on ${brokerUrl}): ${running.url}\n  Every 150 s: worker-2 is SIGKILLed mid-task and Beat stops for a minute. Ctrl-C to stop.\n`);
    const cycle = () => {
      timers.push(
        setTimeout(() => {
          log.info("SIGKILL worker-2, and Beat stops");
          children.get("worker-2@%h")?.kill("SIGKILL");
          children.get("beat")?.kill("SIGKILL");
        }, 40_000),
        setTimeout(() => {
          worker("worker-2@%h", "celery");
          beat();
        }, 100_000),
        setTimeout(cycle, 150_000),
      );
    };
    cycle();
    await untilStopped(log);
  } finally {
    for (const t of timers) clearTimeout(t);
    await running?.stop();
    await stopChildren(children);
    process.off("exit", killAll);
  }
  return 0;
}

/** SIGTERM to every child, SIGKILL to those still there after 5 s. */
async function stopChildren(children: Map<string, Subprocess>) {
  const all = [...children.values()].filter((p) => p.exitCode === null && p.signalCode === null);
  for (const p of all) p.kill("SIGTERM");
  const timer = setTimeout(() => {
    for (const p of all) p.kill("SIGKILL");
  }, 5000);
  await Promise.all(all.map((p) => p.exited));
  clearTimeout(timer);
}
