/**
 * What each `crisper` command runs, built from the validated config. Each
 * part is started here and stopped in reverse order on SIGINT/SIGTERM.
 */
import { brokerKind, createBroker } from "./broker/create.ts";
import type { BrokerPort } from "./broker/port.ts";
import { type BrokerReachability, brokerReachability } from "./broker/reachability.ts";
import { type Collector, createCollector } from "./collector/collector.ts";
import { join } from "node:path";
import { type BrokerSpec, brokerSpecs, type Config, DEFAULT_BROKER, publicUrl, redact } from "./config.ts";
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
import type { SlackBot } from "../bot/slack-app.ts";
import { SLACK_OFF } from "../bot/slack-off.ts";
import { startStatisticsRollup } from "./stats/loop.ts";
import { type RetentionOptions, startRetention } from "./store/retention.ts";
import { pruneStatistics, rollUpStatistics } from "./stats/rollup.ts";

export interface Running {
  stop(): Promise<void>;
  /** The retention pass's loop, in processes that collect (run it now: `retention.runNow()`). */
  retention?: Periodic;
  /** The web server's URL, when this process serves one. */
  url?: string;
  /** The first broker's collector and detector (the only ones with BROKER_URL alone). */
  collector?: Collector;
  detector?: Detector;
  /** Every broker's collector and detector, by broker name (BROKERS). */
  collectors?: ReadonlyMap<string, Collector>;
  detectors?: ReadonlyMap<string, Detector>;
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
 * posted by `serve` and `bot` only. Bolt is loaded only then.
 */
async function slackBot(config: Config, database: Database, parts: Parts, log: Logger): Promise<SlackBot | null> {
  if (!config.SLACK_BOT_TOKEN || !config.SLACK_SIGNING_SECRET) {
    log.info("Slack bot off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to turn it on (README, Slack)");
    return null;
  }
  if (parts.bot && !config.SLACK_ALERT_CHANNEL) log.info("Slack: no SLACK_ALERT_CHANNEL, so /celery is answered but alerts are not posted");
  const { createSlackBot } = await import("../bot/slack-app.ts");
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
async function silenceBeforeStart(database: Database, now: number, broker: string): Promise<number | null> {
  const rows = await database.rows<{ t: number | null }>(
    sql`select extract(epoch from max(last_heartbeat_at))::float8 as t from workers where broker = ${broker}`,
  );
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

/**
 * The broker BROKER_URL names, or one of BROKERS (`spec`). RABBITMQ_MANAGEMENT_URL
 * is one broker's management API: the first RabbitMQ broker's.
 */
export function openBroker(config: Config, log: Logger, spec?: BrokerSpec, reachability?: BrokerReachability): BrokerPort {
  const firstRabbit = brokerSpecs(config).find((s) => brokerKind(s.url) === "rabbitmq");
  const managed = !spec || spec.name === firstRabbit?.name;
  return createBroker({
    reachability,
    brokerUrl: spec?.url ?? config.BROKER_URL,
    resultBackendUrl: config.RESULT_BACKEND_URL,
    globalKeyprefix: config.BROKER_GLOBAL_KEYPREFIX,
    eventQueue: config.EVENT_QUEUE,
    eventQueueExpiresS: config.EVENT_QUEUE_EXPIRES_S,
    eventQueueMaxBytes: config.EVENT_QUEUE_MAX_BYTES,
    managementUrl: managed ? config.RABBITMQ_MANAGEMENT_URL : undefined,
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

/** What `crisper demo` changes in a run: the broker it watches, and what the pages say. */
export interface RunOptions {
  /** A broker of the caller's instead of BROKER_URL's (the demo's simulated cluster). */
  broker?: BrokerPort;
  /** How the log names that broker. */
  brokerName?: string;
  /** A banner on every page. */
  banner?: { title: string; text: string };
}

export async function run(config: Config, parts: Parts, options: RunOptions = {}): Promise<Running> {
  const log = logger("crisper");
  const database = await openStore(config, log);
  // One adapter per watched broker; the first is the one a single-broker
  // setup has. The demo brings its own (a simulated cluster) instead.
  const specs: BrokerSpec[] = options.broker ? [{ name: DEFAULT_BROKER, url: config.BROKER_URL }] : brokerSpecs(config);
  const brokerLog = (s: BrokerSpec) => logger(specs.length > 1 ? `broker:${s.name}` : "broker");
  // One state per broker for "is it there?", so one cause is one log line and the overview can say it.
  const reachabilities = new Map(options.broker ? [] : specs.map((s) => [s.name, brokerReachability({ url: redact(s.url), log: brokerLog(s) })]));
  const brokers = new Map(specs.map((s) => [s.name, options.broker ?? openBroker(config, brokerLog(s), s, reachabilities.get(s.name))]));
  const broker = brokers.get(specs[0]?.name ?? "") as BrokerPort;
  const reachability = reachabilities.get(specs[0]?.name ?? "");
  const stops: (() => Promise<void>)[] = [];
  const collectors = new Map<string, Collector>();
  const detectors = new Map<string, Detector>();
  let url: string | undefined;
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
  const slack = parts.web || parts.bot ? await slackBot(config, web, parts, log) : null;
  if (parts.collect) {
    // One collector and one detector per broker, each writing and judging
    // what carries its broker's name.
    for (const [i, spec] of specs.entries()) {
      const one = specs.length === 1;
      const b = brokers.get(spec.name) as BrokerPort;
      const startedAt = Date.now() / 1000;
      const silentSince = await silenceBeforeStart(database, startedAt, spec.name);
      let detector: Detector | undefined;
      const c = createCollector({
        config: {
          bufferMessages: config.COLLECTOR_BUFFER_MESSAGES,
          bufferBytes: config.COLLECTOR_BUFFER_MB * 2 ** 20,
          // Each broker's collector spools on its own.
          spoolDir: config.SPOOL_MAX_MB > 0 ? join(config.DATA_DIR, one ? "spool" : `spool-${spec.name}`) : null,
          spoolMaxBytes: config.SPOOL_MAX_MB * 2 ** 20,
          batchMessages: config.COLLECTOR_BATCH_MESSAGES,
          enableEvents: config.ENABLE_EVENTS,
          enableEventsIntervalS: config.ENABLE_EVENTS_INTERVAL_S,
          queueSampleIntervalS: config.QUEUE_SAMPLE_INTERVAL_S,
        },
        database,
        broker: b,
        brokerName: spec.name,
        log: logger(one ? "collector" : `collector:${spec.name}`),
        onCommitted: (events) => {
          detector?.observe(events);
          changed("tasks");
        },
      });
      collectors.set(spec.name, c);

      // The detector exists before the first commit, so it sees every event.
      const d = createDetector({
        database,
        broker: b,
        brokerName: spec.name,
        primary: i === 0,
        config: detectConfig(config, spec.url),
        log: logger(one ? "detect" : `detect:${spec.name}`),
        gaps: () => c.gaps,
        streamUpSince: () => c.streamUpSince,
        uncommittedSince: () => c.uncommittedSince,
        onChanges: () => {
          changed("alerts");
          slack?.poster?.nudge();
        },
      });
      detector = d;
      detectors.set(spec.name, d);
      await c.start();
      // Crisper's own downtime is a gap, unless the broker kept the events
      // meanwhile (RabbitMQ's event queue): then they are being read now.
      if (silentSince !== null && !b.keptEventsWhileAway?.()) {
        c.recordGap({ from: silentSince, to: startedAt, reason: "Crisper's collector was not running" });
      }
      log.info(
        `collecting${one ? "" : ` ${spec.name}`} from ${options.brokerName ?? redact(spec.url)}${config.RESULT_BACKEND_URL ? ` and ${redact(config.RESULT_BACKEND_URL)}` : ""}`,
      );
      stops.push(() => c.stop());
      d.start();
      stops.push(() => d.stop());
    }
    // Per-minute statistics, rebuilt from the tasks the collectors mark
    // (src/stats/); minutes whose tasks retention may have deleted stay as
    // they are: those that ended (a minute after they began) before its cutoff.
    const frozenBefore = () => new Date(Date.now() - (config.TASK_RETENTION + 60) * 1000);
    const statistics = startStatisticsRollup({ database, log: logger("statistics"), frozenBefore });
    stops.push(() => statistics.stop());
    // Retention runs beside the detectors (any process that collects; on
    // PostgreSQL an advisory lock keeps two collectors' passes apart). The
    // statistics are rolled up before tasks go, so the pruned minutes keep
    // theirs, and are pruned after STATS_RETENTION.
    const r = startRetention(database, {
      ...retentionOptions(config, {
        // Every marked minute whose tasks are still there is rebuilt first,
        // those this pass is about to delete included (only the minutes an
        // earlier pass already emptied stay frozen).
        beforePrune: async () => {
          await rollUpStatistics(database, { frozenBefore: new Date(Date.now() - (config.TASK_RETENTION + config.RETENTION_INTERVAL_S + 60) * 1000) });
        },
        extraPrunes: [{ kind: "statistics", prune: (db, now) => pruneStatistics(db, new Date(now.getTime() - config.STATS_RETENTION * 1000)) }],
      }),
      intervalS: config.RETENTION_INTERVAL_S,
      log: logger("retention"),
    });
    retention = r;
    stops.push(() => r.stop());
    if (config.COLLECTOR_GC_INTERVAL_S > 0) {
      // Memory stays flat when garbage is collected steadily (COLLECTOR_GC_INTERVAL_S),
      // overload included: the buffer is bounded, and so is what a collection marks.
      const gc = setInterval(() => Bun.gc(true), config.COLLECTOR_GC_INTERVAL_S * 1000);
      stops.push(async () => clearInterval(gc));
    }
  }
  // Memory that starting up used and freed (compiling the embedded
  // database's WebAssembly, migrations) stays mapped until the allocator is
  // told to give it back: once, soon after the start (README, Benchmarks).
  // The code it drops is compiled again when next run, in milliseconds.
  const trim = setTimeout(() => {
    Bun.gc(true);
    Bun.shrink();
  }, 10_000);
  stops.push(async () => clearTimeout(trim));

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
      brokers,
      live,
      auth,
      configuredSchedules: config.BEAT_SCHEDULES.map((s) => s.name),
      // Slack's requests go to the bot; without one, that path says how to turn it on.
      slack: slack ?? SLACK_OFF,
      log: logger("web"),
      only: parts.web ? undefined : "slack",
      brokerState: reachability ? () => reachability.state : undefined,
      banner: options.banner,
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
  const first = specs[0]?.name ?? "";
  return {
    url,
    collector: collectors.get(first),
    detector: detectors.get(first),
    collectors,
    detectors,
    retention,
    slack: slack ?? undefined,
    database,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const stop of stops.reverse()) await stop();
      for (const b of brokers.values()) await b.close();
      await database.close();
    },
  };
}
