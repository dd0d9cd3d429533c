/**
 * Configuration from the environment (and `.env`, which Bun reads), validated
 * once at start-up. A bad value stops the process with one line naming the
 * variable and the fix. Everything else takes a config object, not the
 * environment, so tests build parts with explicit settings.
 */
import { z } from "zod";
import { timezoneName } from "./detect/cron.ts";
import { parseAmqpUrl } from "./broker/amqp/url.ts";
import { brokerKind } from "./broker/kind.ts";
import { errorText } from "./log.ts";
import { parseDeclaredSchedules, type Schedule } from "./detect/schedules.ts";
import { parseAuth } from "./auth/users.ts";

const redisUrl = (name: string, why: string) =>
  z.string().refine((v) => /^rediss?:\/\//.test(v), {
    message: `${name}: expected redis:// or rediss://, got ${"{value}"} (${why})`,
  });

/** Celery's broker: Redis, or RabbitMQ by any of kombu's spellings (vhost in the path). */
const brokerUrl = z.string().superRefine((v, ctx) => {
  const kind = brokerKind(v);
  if (kind === "redis") return;
  if (kind === null) {
    ctx.addIssue({ code: "custom", message: `BROKER_URL: expected redis://, rediss://, amqp://, amqps:// or pyamqp://, got ${"{value}"}` });
    return;
  }
  try {
    parseAmqpUrl(v);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `BROKER_URL: ${errorText(e)}, got ${"{value}"}` });
  }
});

/** A broker's name in BROKERS: short, so every task row can carry it. */
const BROKER_NAME = /^[a-z0-9_-]{1,32}$/;

/** One watched broker: its name (what every record carries) and URL. */
export interface BrokerSpec {
  name: string;
  url: string;
}

export { DEFAULT_BROKER } from "./store/schema/columns.ts";

/**
 * `BROKERS`: `name=url;name=url`. Returns the brokers, or what is wrong
 * (never quoting a URL, which may hold a password).
 */
export function parseBrokers(text: string): BrokerSpec[] | string {
  const out: BrokerSpec[] = [];
  for (const part of text.split(";").map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    const name = eq > 0 ? part.slice(0, eq).trim() : "";
    const url = eq > 0 ? part.slice(eq + 1).trim() : "";
    if (!BROKER_NAME.test(name)) return `BROKERS: expected name=url entries separated by ";", names of 1-32 characters a-z 0-9 _ -; got ${JSON.stringify(name.slice(0, 40) || part.slice(0, 10))}`;
    if (out.some((b) => b.name === name)) return `BROKERS: the name ${JSON.stringify(name)} is given twice`;
    const r = brokerUrl.safeParse(url);
    if (!r.success) return `BROKERS: ${name}: ${(r.error.issues[0]?.message ?? "invalid").replace("BROKER_URL: ", "").replace("{value}", JSON.stringify(redact(url)))}`;
    out.push({ name, url });
  }
  return out.length ? out : "BROKERS: expected name=url entries separated by \";\"";
}

/** The brokers to watch: BROKERS, or BROKER_URL alone as the one broker named "default". */
export function brokerSpecs(c: Pick<Config, "BROKERS" | "BROKER_URL">): BrokerSpec[] {
  return c.BROKERS ?? [{ name: "default", url: c.BROKER_URL }];
}

const seconds = (def: number) => z.coerce.number().positive().default(def);
const bool = (def: boolean) =>
  z
    .enum(["1", "0", "true", "false", "yes", "no", "on", "off"], { message: "expected true or false" })
    .default(def ? "true" : "false")
    .transform((v) => ["1", "true", "yes", "on"].includes(v));

export const configSchema = z.object({
  BROKER_URL: brokerUrl.default("redis://localhost:6379/0"),
  /** Several brokers, `name=url;name=url` (Redis and RabbitMQ mixed); every record carries its broker's name. */
  BROKERS: z
    .string()
    .superRefine((v, ctx) => {
      const r = parseBrokers(v);
      if (typeof r === "string") ctx.addIssue({ code: "custom", message: r });
    })
    .transform((v) => parseBrokers(v) as BrokerSpec[])
    .optional(),
  /** kombu's `global_keyprefix` transport option, if the watched Celery sets one. */
  BROKER_GLOBAL_KEYPREFIX: z.string().default(""),
  BROKER_VISIBILITY_TIMEOUT: seconds(3600),
  /**
   * RabbitMQ's `consumer_timeout`, seconds: a delivery unacknowledged this
   * long makes RabbitMQ close the worker's channel and hand the message to
   * another worker (RabbitMQ's visibility timeout, in effect).
   */
  BROKER_CONSUMER_TIMEOUT: seconds(1800),
  /** RabbitMQ: Crisper's own event queue, bound to `celeryev`; events wait there while Crisper is away. */
  EVENT_QUEUE: z.string().min(1).max(255).default("crisper.events"),
  /** RabbitMQ: the event queue is deleted after this long without a consumer (`x-expires`). */
  EVENT_QUEUE_EXPIRES_S: seconds(86_400),
  /** RabbitMQ: most bytes the event queue holds while nobody consumes it; past it the oldest go (`x-max-length-bytes`). */
  EVENT_QUEUE_MAX_BYTES: z.coerce.number().int().positive().default(256 * 2 ** 20),
  /** RabbitMQ's management plugin HTTP API (http://user:password@host:15672): unacked counts per queue, more queues. */
  RABBITMQ_MANAGEMENT_URL: z
    .string()
    .url()
    .refine((v) => /^https?:\/\//.test(v), { message: "expected an http:// or https:// address (the management plugin's, port 15672 by default)" })
    .optional(),
  RESULT_BACKEND_URL: redisUrl(
    "RESULT_BACKEND_URL",
    "Crisper reads Celery's Redis result backend; rpc:// results go to the caller alone and cannot be read by a third party",
  ).optional(),
  DATABASE_URL: z
    .string()
    .refine((v) => /^postgres(ql)?:\/\//.test(v), { message: "expected postgres:// or postgresql://" })
    .optional(),
  DATA_DIR: z.string().min(1).default("./.crisper"),
  PORT: z.coerce.number().int().min(0).max(65535).default(5555),
  HOST: z.string().min(1).default("127.0.0.1"),
  SLACK_BOT_TOKEN: z.string().optional(),
  SLACK_SIGNING_SECRET: z.string().optional(),
  SLACK_ALERT_CHANNEL: z.string().optional(),
  SLACK_API_URL: z
    .string()
    .url()
    .transform((v) => (v.endsWith("/") ? v : `${v}/`))
    .optional(),
  /** Alerts of one kind opening together at least this many times are posted as one grouped message. */
  SLACK_GROUP_THRESHOLD: z.coerce.number().int().min(2).default(3),
  /** How often the bot looks for alerts to post or resolve. */
  SLACK_POLL_INTERVAL_S: seconds(2),
  /** Where people reach Crisper's pages, for links in Slack (default: http://HOST:PORT). */
  PUBLIC_URL: z
    .string()
    .url()
    .refine((v) => /^https?:\/\//.test(v), { message: "expected an http:// or https:// address" })
    .transform((v) => v.replace(/\/+$/, ""))
    .optional(),
  /** `role:user:password` entries (README, Security); unset: open and read-only. */
  CRISPER_AUTH: z
    .string()
    .superRefine((v, ctx) => {
      const r = parseAuth(v);
      if (typeof r === "string") ctx.addIssue({ code: "custom", message: r });
    })
    .optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),

  /** Broadcast `enable_events` so workers running Celery's defaults send task events. */
  ENABLE_EVENTS: bool(true),
  ENABLE_EVENTS_INTERVAL_S: seconds(10),
  QUEUE_SAMPLE_INTERVAL_S: seconds(5),
  /** Events held between the broker socket and the database; past this they are dropped, counted and logged. */
  COLLECTOR_BUFFER_MESSAGES: z.coerce.number().int().min(1000).default(200_000),
  /** The same buffer's bound in megabytes of raw messages: what keeps a long overload from taking the machine's memory. */
  COLLECTOR_BUFFER_MB: z.coerce.number().min(1).default(128),
  COLLECTOR_BATCH_MESSAGES: z.coerce.number().int().min(1).default(5000),
  /**
   * When the buffer is full (the database down, or slower than the broker
   * for long), messages go to a spool on disk, DATA_DIR/spool, up to this
   * many megabytes, and are written back in order; only past it are they
   * dropped. 0: no spool.
   */
  SPOOL_MAX_MB: z.coerce.number().min(0).default(2048),
  /** PostgreSQL: a web page's or API call's query is cancelled after this long, so pages answer (or fail) in time. */
  WEB_STATEMENT_TIMEOUT_S: seconds(5),
  /**
   * A full garbage collection this often (0: never). JavaScriptCore otherwise
   * lets the collector's garbage (mostly raw message strings) pile up to a
   * ~470 MB sawtooth between its own collections; collected every second the
   * collector stays near 160 MB (peak 210 MB) at 10,000 events/s (README,
   * Benchmarks).
   */
  COLLECTOR_GC_INTERVAL_S: z.coerce.number().min(0).default(1),

  // Detection (README lists each with what it means).
  DETECT_INTERVAL_S: seconds(2),
  INSPECT_INTERVAL_S: seconds(10),
  WORKER_OFFLINE_GRACE_S: z.coerce.number().min(0).default(2),
  WORKER_FORGET_AFTER_S: seconds(86_400),
  TASK_STALL_DEFAULT_S: seconds(3600),
  TASK_STALL_MIN_S: seconds(60),
  TASK_STALL_FACTOR: z.coerce.number().min(1).default(3),
  TASK_STALL_THRESHOLDS: z
    .string()
    .default("")
    .refine((v) => parseThresholds(v) !== null, { message: "expected task.name=seconds entries separated by commas" })
    .transform((v) => parseThresholds(v) as Record<string, number>),
  VISIBILITY_RISK_RATIO: z.coerce.number().gt(0).lt(1).default(0.8),
  BEAT_TOLERANCE: z.coerce.number().min(0).default(1),
  BEAT_SCHEDULES: z
    .string()
    .default("")
    .superRefine((v, ctx) => {
      const r = parseDeclaredSchedules(v);
      if (typeof r === "string") ctx.addIssue({ code: "custom", message: r });
    })
    .transform((v) => parseDeclaredSchedules(v) as Schedule[]),
  /** Celery's `timezone` setting: the zone declared cron schedules are read in. */
  BEAT_TIMEZONE: z
    .string()
    .default("UTC")
    .refine((v) => timezoneName(v) !== null, {
      message: "unknown timezone: expected an IANA name such as UTC, Europe/Paris or America/New_York (Celery's timezone setting)",
    })
    .transform((v) => timezoneName(v) ?? v),
  QUEUE_BACKLOG_DEPTH: z.coerce.number().int().positive().optional(),
  QUEUE_BACKLOG_WINDOW_S: seconds(300),
  QUEUE_BACKLOG_MIN_GROWTH: z.coerce.number().int().min(1).default(100),
  EVENTS_DISABLED_AFTER_S: seconds(60),
  /** event_gap: interruptions of the event stream less than this apart are one alert, resolved once it has been up this long. */
  EVENT_GAP_MERGE_S: z.coerce.number().min(0).default(600),
  /** How often each online worker's configuration (`conf`, `stats`) is read again; it is also read when a worker comes online. */
  WORKER_CONFIG_INTERVAL_S: seconds(600),
  /** tasks_expired: resolved once no task of the name has expired in the queue for this long. */
  TASKS_EXPIRED_QUIET_S: z.coerce.number().min(0).default(600),
  /** Retention (store/retention.ts): tasks with their events, resolved alerts, statistics; each a duration in seconds once parsed. */
  TASK_RETENTION: duration("30d"),
  ALERT_RETENTION: duration("90d"),
  STATS_RETENTION: duration("400d"),
  RETENTION_INTERVAL_S: seconds(3600),
});

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** A duration as `90s`, `15m`, `12h`, `30d` or `2w`, in seconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/.exec(text);
  if (!m) return null;
  const s = Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
  return s > 0 && Number.isFinite(s) ? s : null;
}

function duration(def: string) {
  return z
    .string()
    .default(def)
    .refine((v) => parseDuration(v) !== null, { message: "expected a duration such as 90s, 12h or 30d" })
    .transform((v) => parseDuration(v) as number);
}

/** `TASK_STALL_THRESHOLDS`: `app.tasks.report=7200,app.tasks.email=60`. */
function parseThresholds(text: string): Record<string, number> | null {
  const out: Record<string, number> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^=]+)=(\d+(?:\.\d+)?)$/.exec(part);
    if (!m || !(Number(m[2]) > 0)) return null;
    out[(m[1] as string).trim()] = Number(m[2]);
  }
  return out;
}

export type Config = z.infer<typeof configSchema>;

// BROKERS holds URLs inside its own syntax: its messages redact them, the raw value is never printed.
const SECRETS = new Set(["CRISPER_AUTH", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "BROKERS"]);

/** Parses the environment; on error, returns the one-line message to print. */
export function parseConfig(env: Record<string, string | undefined>): { config: Config } | { error: string } {
  const input: Record<string, string | undefined> = { ...env };
  if (!input.BROKER_URL && input.CELERY_BROKER_URL) input.BROKER_URL = input.CELERY_BROKER_URL;
  for (const k of Object.keys(input)) if (input[k] === "") delete input[k];
  const r = configSchema.safeParse(input);
  if (r.success) {
    const half = slackHalfConfigured(r.data);
    return half ? { error: half } : { config: r.data };
  }
  const issue = r.error.issues[0];
  const name = String(issue?.path[0] ?? "configuration");
  const value = input[name];
  let message = issue?.message ?? "invalid";
  // Never echo a secret back into a log; URLs are shown without their passwords.
  const printable = (v: string) => (SECRETS.has(name) ? "(hidden)" : JSON.stringify(/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? redact(v) : v));
  message = message.replace("{value}", value === undefined ? "nothing" : printable(value));
  const shown = value !== undefined && !SECRETS.has(name) ? ` (got ${printable(value)})` : "";
  return { error: message.startsWith(`${name}:`) ? message : `${name}: ${message}${shown}` };
}

/**
 * The bot needs its token and its signing secret together: one without the
 * other is a mistake worth stopping for. The alert channel is optional
 * (without it the bot answers commands but posts no alerts).
 */
function slackHalfConfigured(c: Config): string | null {
  if (c.SLACK_BOT_TOKEN && !c.SLACK_SIGNING_SECRET)
    return "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN (the app's Signing Secret, under Basic Information)";
  if (c.SLACK_SIGNING_SECRET && !c.SLACK_BOT_TOKEN)
    return "SLACK_BOT_TOKEN: required with SLACK_SIGNING_SECRET (the xoxb- token, under OAuth & Permissions)";
  if (c.SLACK_ALERT_CHANNEL && !c.SLACK_BOT_TOKEN) return "SLACK_BOT_TOKEN: required with SLACK_ALERT_CHANNEL";
  return null;
}

/** Where links in messages point: PUBLIC_URL, or the web server's own address. */
export function publicUrl(c: Config): string {
  if (c.PUBLIC_URL) return c.PUBLIC_URL;
  const host = c.HOST === "0.0.0.0" || c.HOST === "::" ? "localhost" : c.HOST;
  return `http://${host.includes(":") ? `[${host}]` : host}:${c.PORT}`;
}

/** Query parameters that carry a secret in a connection URL (libpq, redis-py, kombu). */
const SECRET_PARAMS = new Set(["password", "sslpassword", "passwd", "pass", "token", "secret", "auth"]);

/**
 * A URL as it may be printed: the password (and any secret query parameter)
 * replaced by ***. The URL is parsed, not pattern-matched, so a password
 * holding `@`, `/` or `:` is hidden whole. Something that does not parse as
 * a URL is not printed at all, since there is no telling where its secret is.
 */
export function redact(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "(a value that is not a URL)";
  }
  if (url.password) url.password = "***";
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_PARAMS.has(key.toLowerCase())) url.searchParams.set(key, "***");
  }
  return url.toString();
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const r = parseConfig(env);
  if ("error" in r) {
    console.error(`crisper: ${r.error}`);
    process.exit(2);
  }
  return r.config;
}
