/**
 * What each `crisper` command runs, built from the validated config. Each
 * part is started here and stopped in reverse order on SIGINT/SIGTERM.
 */
import { createRedisBroker } from "./broker/redis/adapter.ts";
import type { BrokerPort } from "./broker/port.ts";
import { type Collector, createCollector } from "./collector/collector.ts";
import { type Config, redact } from "./config.ts";
import { type Logger, logger } from "./log.ts";
import { type Database, openDatabase } from "./store/database.ts";
import { migrate } from "./store/migrate.ts";
import { createApp } from "./web/app.ts";

export interface Running {
  stop(): Promise<void>;
  /** The web server's URL, when this process serves one. */
  url?: string;
  collector?: Collector;
  database: Database;
}

export async function openStore(config: Config, log: Logger): Promise<Database> {
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  const { applied } = await migrate(database);
  log.info(
    `${database.kind === "pglite" ? `embedded database in ${config.DATA_DIR}` : `PostgreSQL ${redact(config.DATABASE_URL ?? "")}`}` +
      (applied.length ? `; applied migrations ${applied.join(", ")}` : ""),
  );
  return database;
}

export function openBroker(config: Config, log: Logger): BrokerPort {
  return createRedisBroker({
    brokerUrl: config.BROKER_URL,
    resultBackendUrl: config.RESULT_BACKEND_URL,
    globalKeyprefix: config.BROKER_GLOBAL_KEYPREFIX,
    log,
  });
}

export async function run(config: Config, parts: { collect: boolean; web: boolean }): Promise<Running> {
  const log = logger("crisper");
  const database = await openStore(config, log);
  const broker = openBroker(config, logger("broker"));
  const stops: (() => Promise<void>)[] = [];
  let collector: Collector | undefined;
  let url: string | undefined;

  if (parts.collect) {
    collector = createCollector({
      config: {
        bufferMessages: config.COLLECTOR_BUFFER_MESSAGES,
        batchMessages: config.COLLECTOR_BATCH_MESSAGES,
        enableEvents: config.ENABLE_EVENTS,
        enableEventsIntervalS: config.ENABLE_EVENTS_INTERVAL_S,
        queueSampleIntervalS: config.QUEUE_SAMPLE_INTERVAL_S,
      },
      database,
      broker,
      log: logger("collector"),
    });
    await collector.start();
    log.info(`collecting from ${redact(config.BROKER_URL)}${config.RESULT_BACKEND_URL ? ` and ${redact(config.RESULT_BACKEND_URL)}` : ""}`);
    const c = collector;
    stops.push(() => c.stop());
  }

  if (parts.web) {
    const app = createApp({ database, broker, log: logger("web") });
    const server = Bun.serve({
      hostname: config.HOST,
      port: config.PORT,
      fetch: app.fetch,
      // Live pages hold SSE connections open; they send heartbeats well inside this.
      idleTimeout: 60,
    });
    url = `http://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${server.port}`;
    log.info(`web server on ${url}`);
    stops.push(async () => {
      await server.stop(true);
    });
  }

  let stopped = false;
  return {
    url,
    collector,
    database,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const stop of stops.reverse()) await stop();
      await broker.close();
      await database.close();
    },
  };
}
