#!/usr/bin/env bun
/**
 * `crisper [serve|collect|web|bot|migrate|demo]` — see README and CONTRACT.md.
 */
import { loadConfig } from "./config.ts";
import { logger, setLogLevel } from "./log.ts";
import { openStore, run } from "./processes.ts";
import { keepServingOnUncaughtErrors } from "./supervise.ts";
import { VERSION } from "./version.ts";
import { runDemo } from "./demo/command.ts";

const HELP = `crisper ${VERSION} — a monitor for Celery

Usage: crisper [command]

Commands:
  serve     collector, web server and Slack bot in one process (default)
  collect   collector only (several may run against one database)
  web       web server and JSON API only
  bot       Slack bot only
  migrate   apply database migrations and exit
  demo      a simulated Celery cluster that stages every silent failure, monitored
            by Crisper (nothing else needed); --real: a real local cluster

Configuration is read from the environment and .env; see README.md.
  BROKER_URL        Celery's Redis broker (default redis://localhost:6379/0)
  DATABASE_URL      PostgreSQL (default: embedded database in DATA_DIR, ./.crisper)
  PORT, HOST        web server (default 127.0.0.1:5555)

Options:
  -h, --help        show this help
  -v, --version     show the version`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? "serve";
  if (command === "-h" || command === "--help" || command === "help") {
    console.log(HELP);
    return 0;
  }
  if (command === "-v" || command === "--version") {
    console.log(VERSION);
    return 0;
  }
  const known = ["serve", "collect", "web", "bot", "migrate", "demo"];
  if (!known.includes(command)) {
    console.error(`crisper: unknown command ${JSON.stringify(command)}; expected one of ${known.join(", ")} (see crisper --help)`);
    return 2;
  }
  // The demo makes its own configuration: the environment's broker, database and Slack are for real use.
  if (command === "demo") return runDemo(argv.slice(1));
  const config = loadConfig();
  setLogLevel(config.LOG_LEVEL);
  const log = logger("crisper");

  if (command === "migrate") {
    const database = await openStore(config, log);
    await database.close();
    return 0;
  }
  if (command === "bot" && !(config.SLACK_BOT_TOKEN && config.SLACK_SIGNING_SECRET)) {
    console.error("crisper bot: the Slack bot is not configured; set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_ALERT_CHANNEL (README, Slack)");
    return 2;
  }

  // A monitor that dies silently is worse than none: whatever escapes every
  // loop's own handling is logged with its stack, and the process serves on.
  keepServingOnUncaughtErrors(logger("crisper"));
  const running = await run(config, {
    collect: command === "serve" || command === "collect",
    web: command === "serve" || command === "web",
    bot: command === "serve" || command === "bot",
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info(`${signal}: stopping`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await running.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`crisper: ${e.message}`);
    process.exit(1);
  },
);
