/**
 * What each `crisper` command runs, built from the validated config. Each
 * part is started here and stopped in reverse order on SIGINT/SIGTERM.
 */
import { createBroker } from "./broker/create.ts";
import type { BrokerPort } from "./broker/port.ts";
import { type Collector, createCollector } from "./collector/collector.ts";
import { join } from "node:path";
import { type Config, publicUrl, redact } from "./config.ts";
import { type Logger, logger } from "./log.ts";
import type { Periodic } from "./supervise.ts";
import { type Database, openDatabase } from "./store/database.ts";
import { migrate } from "./store/migrate.ts";
import { createApp } from "./web/app.ts";
import { createLiveHub, createLivePublisher, isLiveKind, LIVE_CHANNEL, type LiveKind } from "./web/live.ts";
import { createAuth } from "./http/auth.ts";
import { type Detector, createDetector, detectConfig } from "./detect/index.ts";
import { sql } from "./store/database.ts";
import { Links } from "../bot/messages.ts";
import { createSlackBot, SLACK_OFF, type SlackBot } from "../bot/slack-app.ts";
import { type RetentionOptions, startRetention } from "./store/retention.ts";

export interface Running {
  stop(): Promise<void>;
  /** The retention pass's loop, in processes that collect (run it now: `retention.runNow()`). */
  retention?: Periodic;
  /** The web server's URL, when this process serves one. */
  url?: string;
  collector?: Collector;
  detector?: Detector;
  slack?: SlackBot;
  database: Database;
}

/** Which parts a command runs: `serve` all three, the others one each. */
export interface Parts {
  collect: boolean;
  web: boolean;
  /** Post alerts to Slack (and, without `web`, serve Slack's requests on PORT). */
  bot: boolean;
}

/**
 * The Slack bot when it is configured; otherwise null, said once. Commands
 * are answered wherever Slack's requests arrive (any web process); alerts are
 * posted by `serve` and `bot` only.
 */
function slackBot(config: Config, database: Database, parts: Parts, log: Logger): SlackBot | null {
  if (!config.SLACK_BOT_TOKEN || !config.SLACK_SIGNING_SECRET) {
    log.info("Slack bot off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to turn it on (README, Slack)");
    return null;
  }
  if (parts.bot && !config.SLACK_ALERT_CHANNEL) log.info("Slack: no SLACK_ALERT_CHANNEL, so /celery is answered but alerts are not posted");
  return createSlackBot({
    token: config.SLACK_BOT_TOKEN,
    signingSecret: config.SLACK_SIGNING_SECRET,
    apiUrl: config.SLACK_API_URL,
    alertChannel: config.SLACK_ALERT_CHANNEL,
    groupThreshold: config.SLACK_GROUP_THRESHOLD,
    pollIntervalS: config.SLACK_POLL_INTERVAL_S,
    database,
    links: new Links(publicUrl(config)),
    log: logger("slack"),
    postAlerts: parts.bot,
  });
}

/**
 * The last sign of life the store holds from before this process started:
 * everything between it and now was not collected (a collector restart is a
 * gap too). Only recent silences count; a database left idle for days is not
 * a gap to reconcile.
 */
async function silenceBeforeStart(database: Database, now: number): Promise<number | null> {
  const rows = await database.rows<{ t: number | null }>(sql`select extract(epoch from max(last_heartbeat_at))::float8 as t from workers`);
  const t = rows[0]?.t === null || rows[0]?.t === undefined ? null : Number(rows[0].t);
  if (t === null || now - t < 10 || now - t > 86_400) return null;
  return t;
}

export async function openStore(config: Config, log: Logger): Promise<Database> {
  const database = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    webStatementTimeoutMs: config.WEB_STATEMENT_TIMEOUT_S * 1000,
  });
  // PostgreSQL may come up after Crisper (containers start in any order):
  // wait for it rather than exit, saying so once.
  let applied: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      applied = (await migrate(database)).applied;
      break;
    } catch (e) {
      if (database.kind === "pglite") throw e;
      if (attempt === 1) log.warn(`database not ready (${(e as Error).message}); retrying every 2 s`);
      await Bun.sleep(2000);
    }
  }
  log.info(
    `${database.kind === "pglite" ? `embedded database in ${config.DATA_DIR}` : `PostgreSQL ${redact(config.DATABASE_URL ?? "")}`}` +
      (applied.length ? `; applied migrations ${applied.join(", ")}` : ""),
  );
  return database;
}

export function openBroker(config: Config, log: Logger): BrokerPort {
  return createBroker({
    brokerUrl: config.BROKER_URL,
    resultBackendUrl: config.RESULT_BACKEND_URL,
    globalKeyprefix: config.BROKER_GLOBAL_KEYPREFIX,
    eventQueue: config.EVENT_QUEUE,
    eventQueueExpiresS: config.EVENT_QUEUE_EXPIRES_S,
    eventQueueMaxBytes: config.EVENT_QUEUE_MAX_BYTES,
    managementUrl: config.RABBITMQ_MANAGEMENT_URL,
    log,
  });
}

/**
 * What a retention pass needs from the config. `extra` holds the statistics'
 * hooks (a rollup before tasks are deleted, their own prunes after).
 */
export function retentionOptions(config: Config, extra: Pick<RetentionOptions, "beforePrune" | "extraPrunes"> = {}): RetentionOptions {
  return {
    taskRetentionS: config.TASK_RETENTION,
    alertRetentionS: config.ALERT_RETENTION,
    statsRetentionS: config.STATS_RETENTION,
    ...extra,
  };
}

export async function run(config: Config, parts: Parts): Promise<Running> {
  const log = logger("crisper");
  const database = await openStore(config, log);
  const broker = openBroker(config, logger("broker"));
  const stops: (() => Promise<void>)[] = [];
  let collector: Collector | undefined;
  let url: string | undefined;
  let detector: Detector | undefined;
  let retention: Periodic | undefined;
  // Live page updates come from this process's collector and detectors;
  // on PostgreSQL they also travel through NOTIFY to web processes elsewhere.
  const live = parts.web ? createLiveHub() : undefined;
  if (live) stops.push(async () => live.close());
  const notify = database.notify?.bind(database);
  const publisher =
    parts.collect && notify
      ? createLivePublisher(
          (kind) => notify(LIVE_CHANNEL, kind),
          (e) => log.once(`live-notify:${e.message}`, `live updates for other processes: ${e.message}`),
        )
      : undefined;
  if (publisher) stops.push(async () => publisher.close());
  if (live && !parts.collect && database.listen) {
    const listening = await database.listen(LIVE_CHANNEL, (kind) => {
      if (isLiveKind(kind)) live.notify(kind);
    });
    stops.push(() => listening.unlisten());
  }
  const changed = (kind: LiveKind) => {
    live?.notify(kind);
    publisher?.notify(kind);
  };
  // Pages, the API and Slack's commands query through connections of their
  // own, with a statement timeout; the collector and detector keep theirs.
  const web = parts.web || parts.bot ? database.forWeb() : database;
  const slack = parts.web || parts.bot ? slackBot(config, web, parts, log) : null;
  if (parts.collect) {
    const startedAt = Date.now() / 1000;
    const silentSince = await silenceBeforeStart(database, startedAt);
    const c = createCollector({
      config: {
        bufferMessages: config.COLLECTOR_BUFFER_MESSAGES,
        bufferBytes: config.COLLECTOR_BUFFER_MB * 2 ** 20,
        spoolDir: config.SPOOL_MAX_MB > 0 ? join(config.DATA_DIR, "spool") : null,
        spoolMaxBytes: config.SPOOL_MAX_MB * 2 ** 20,
        batchMessages: config.COLLECTOR_BATCH_MESSAGES,
        enableEvents: config.ENABLE_EVENTS,
        enableEventsIntervalS: config.ENABLE_EVENTS_INTERVAL_S,
        queueSampleIntervalS: config.QUEUE_SAMPLE_INTERVAL_S,
      },
      database,
      broker,
      log: logger("collector"),
      onCommitted: (events) => {
        detector?.observe(events);
        changed("tasks");
      },
    });
    collector = c;
    if (silentSince !== null) c.recordGap({ from: silentSince, to: startedAt, reason: "Crisper's collector was not running" });
    // The detector exists before the first commit, so it sees every event.
    const d = createDetector({
      database,
      broker,
      config: detectConfig(config),
      log: logger("detect"),
      gaps: () => c.gaps,
      streamUpSince: () => c.streamUpSince,
      uncommittedSince: () => c.uncommittedSince,
      onChanges: () => {
        changed("alerts");
        slack?.poster?.nudge();
      },
    });
    detector = d;
    await c.start();
    log.info(`collecting from ${redact(config.BROKER_URL)}${config.RESULT_BACKEND_URL ? ` and ${redact(config.RESULT_BACKEND_URL)}` : ""}`);
    stops.push(() => c.stop());
    d.start();
    stops.push(() => d.stop());
    // Retention runs beside the detector (any process that collects; on
    // PostgreSQL an advisory lock keeps two collectors' passes apart).
    const r = startRetention(database, { ...retentionOptions(config), intervalS: config.RETENTION_INTERVAL_S, log: logger("retention") });
    retention = r;
    stops.push(() => r.stop());
    if (config.COLLECTOR_GC_INTERVAL_S > 0) {
      // Memory stays flat when garbage is collected steadily (COLLECTOR_GC_INTERVAL_S),
      // overload included: the buffer is bounded, and so is what a collection marks.
      const gc = setInterval(() => Bun.gc(true), config.COLLECTOR_GC_INTERVAL_S * 1000);
      stops.push(async () => clearInterval(gc));
    }
  }

  if (slack) {
    await slack.start();
    stops.push(() => slack.stop());
  }

  if (parts.web || parts.bot) {
    // `crisper bot` alone still listens on PORT: Slack's requests and health checks.
    const auth = createAuth(config.CRISPER_AUTH, publicUrl(config));
    log.info(auth.enabled ? "CRISPER_AUTH on: pages and API need a user; admins can revoke" : "no CRISPER_AUTH: pages and API are open and read-only");
    const app = createApp({
      database: web,
      broker,
      live,
      auth,
      configuredSchedules: config.BEAT_SCHEDULES.map((s) => s.name),
      // Slack's requests go to the bot; without one, that path says how to turn it on.
      slack: slack ?? SLACK_OFF,
      log: logger("web"),
      only: parts.web ? undefined : "slack",
      retention: { taskS: config.TASK_RETENTION, alertS: config.ALERT_RETENTION },
    });
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
    detector,
    retention,
    slack: slack ?? undefined,
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
