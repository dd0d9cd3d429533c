/**
 * Posts alerts to SLACK_ALERT_CHANNEL and their resolutions in the alert's
 * thread. The outbox is the `slack_alert_posts` table, so the bot loses no
 * alert: one that Slack refused (down, rate limited, a restart in between)
 * stays there and is posted on a later pass, with backoff. Many alerts of one
 * kind opening together become one grouped message, and each alert is posted
 * once however long it stays open.
 */
import { asc, inArray } from "drizzle-orm";
import { alertJson } from "../src/api/serialize.ts";
import type { Alert } from "../src/alerts/kinds.ts";
import { errorText, type Logger } from "../src/log.ts";
import { slackMetrics } from "../src/metrics.ts";
import { type Database, isDatabaseUnavailable, sql } from "../src/store/database.ts";
import { reportUnexpected } from "../src/supervise.ts";
import { alerts } from "../src/store/schema/alerts.ts";
import { alertPost, groupedAlertPost, type Links, resolutionPost, type SlackMessage } from "./messages.ts";

/** The one Slack Web API call the poster makes (`chat.postMessage`). */
export type PostMessage = (m: SlackMessage & { channel: string; threadTs?: string }) => Promise<{ ts: string; channel: string }>;

export interface AlertPosterOptions {
  database: Database;
  post: PostMessage;
  channel: string;
  links: Links;
  /** This many alerts of one kind opening together are posted as one message. */
  groupThreshold: number;
  pollIntervalS: number;
  log: Logger;
}

/** A poster holds its claim on an alert this long; a crashed poster's claims expire. */
const CLAIM_S = 60;
/** New alerts are re-read this long before the watermark passes them (a slow insert commits late). */
const SETTLE_S = 30;
const MAX_BACKOFF_S = 300;

/** Why a Slack call failed, and when to try again. */
export function classifySlackError(e: unknown, attempts: number): { reason: string; retryInS: number } {
  const err = e as { code?: string; retryAfter?: number; statusCode?: number; data?: { error?: string }; message?: string };
  const backoff = Math.min(MAX_BACKOFF_S, 2 ** Math.min(attempts, 10));
  if (err.code === "slack_webapi_rate_limited_error") {
    return { reason: `rate limited by Slack (Retry-After ${err.retryAfter ?? "?"} s)`, retryInS: Math.max(1, err.retryAfter ?? backoff) };
  }
  if (err.code === "slack_webapi_platform_error") {
    const what = err.data?.error ?? "error";
    const hint =
      what === "not_in_channel" || what === "channel_not_found"
        ? ": invite the app to the channel (/invite @Crisper) or check SLACK_ALERT_CHANNEL"
        : what === "invalid_auth" || what === "not_authed" || what === "token_revoked"
          ? ": check SLACK_BOT_TOKEN"
          : "";
    return { reason: `Slack refused the post (${what})${hint}`, retryInS: Math.max(backoff, 30) };
  }
  if (err.code === "slack_webapi_http_error") return { reason: `Slack answered HTTP ${err.statusCode ?? "?"}`, retryInS: backoff };
  return { reason: `Slack unreachable (${(err.message ?? String(e)).slice(0, 200)})`, retryInS: backoff };
}

export function createAlertPoster(o: AlertPosterOptions) {
  const { database, channel } = o;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  /** Passes finished so far, and who waits for the next one to finish (tests, through nextPass). */
  let finished = 0;
  let waiting: { after: number; done: () => void; fail: (e: Error) => void }[] = [];
  /** The reason of the last failure, so a long outage is logged once, and its end too. */
  let failing: string | null = null;

  async function loadAlerts(ids: number[]): Promise<Alert[]> {
    if (ids.length === 0) return [];
    return (await database.db.select().from(alerts).where(inArray(alerts.id, ids)).orderBy(asc(alerts.id))) as Alert[];
  }

  /** Gives every alert opened since the watermark its outbox row. */
  async function enqueueNew() {
    const [state] = await database.rows<{ last_alert_id: string | number }>(
      sql`select last_alert_id from slack_channels where channel = ${channel}`,
    );
    if (!state) {
      // A new channel: what is open now, then everything opened from here on.
      await database.rows(sql`
        insert into slack_channels (channel, since, last_alert_id)
        select ${channel}, now(), coalesce(max(id), 0) from alerts
        on conflict (channel) do nothing`);
      await database.rows(sql`
        insert into slack_alert_posts (alert_id, channel)
        select id, ${channel} from alerts where status = 'open'
        on conflict (alert_id) do nothing`);
      return;
    }
    const rows = await database.rows<{ id: string | number; settled: boolean }>(sql`
      select id, opened_at < now() - make_interval(secs => ${SETTLE_S}) as settled from alerts
      where id > ${Number(state.last_alert_id)} order by id limit 2000`);
    if (rows.length === 0) return;
    const ids = rows.map((r) => Number(r.id));
    await database.rows(sql`
      insert into slack_alert_posts (alert_id, channel)
      select x::bigint, ${channel} from json_array_elements_text(${JSON.stringify(ids)}::text::json) as x
      on conflict (alert_id) do nothing`);
    // The watermark moves past settled alerts only: one still being
    // committed by another collector may take a lower id.
    let mark = Number(state.last_alert_id);
    for (const r of rows) {
      if (!r.settled) break;
      mark = Number(r.id);
    }
    await database.rows(sql`update slack_channels set last_alert_id = greatest(last_alert_id, ${mark}) where channel = ${channel}`);
  }

  /** Takes a lease on due rows; returns the ids this poster now owns. */
  async function claim(kind: "announce" | "resolve"): Promise<number[]> {
    const due =
      kind === "announce"
        ? sql`p.posted_at is null and p.channel = ${channel}`
        : sql`p.posted_at is not null and p.resolution_posted_at is null and a.status = 'resolved'`;
    const rows = await database.rows<{ alert_id: string | number }>(sql`
      update slack_alert_posts set claimed_until = now() + make_interval(secs => ${CLAIM_S})
      where alert_id in (
        select p.alert_id from slack_alert_posts p join alerts a on a.id = p.alert_id
        where ${due}
          and (p.next_attempt_at is null or p.next_attempt_at <= now())
          and (p.claimed_until is null or p.claimed_until < now())
        order by p.alert_id limit 500)
      and (claimed_until is null or claimed_until < now())
      returning alert_id`);
    return rows.map((r) => Number(r.alert_id)).sort((a, b) => a - b);
  }

  async function release(ids: number[], e: unknown) {
    const [row] = await database.rows<{ attempts: number }>(
      sql`select max(attempts) as attempts from slack_alert_posts where alert_id = any(array(select json_array_elements_text(${JSON.stringify(ids)}::text::json)::bigint))`,
    );
    const { reason, retryInS } = classifySlackError(e, (row?.attempts ?? 0) + 1);
    await database.rows(sql`
      update slack_alert_posts set claimed_until = null, attempts = attempts + 1, last_error = ${reason},
        next_attempt_at = now() + make_interval(secs => ${retryInS})
      where alert_id = any(array(select json_array_elements_text(${JSON.stringify(ids)}::text::json)::bigint))`);
    slackMetrics.postFailures.inc();
    if (failing !== reason) o.log.warn(`${reason}; ${ids.length} alert post(s) kept, next try in ${retryInS} s`);
    failing = reason;
    return retryInS;
  }

  async function unclaim(ids: number[], retryInS: number) {
    if (ids.length === 0) return;
    await database.rows(sql`
      update slack_alert_posts set claimed_until = null, next_attempt_at = now() + make_interval(secs => ${retryInS})
      where alert_id = any(array(select json_array_elements_text(${JSON.stringify(ids)}::text::json)::bigint))`);
  }

  function succeeded() {
    slackMetrics.posts.inc();
    if (failing) o.log.info("Slack takes posts again");
    failing = null;
  }

  /** Alerts not posted yet: one message each, or one per kind when many opened together. */
  async function announce() {
    const list = await loadAlerts(await claim("announce"));
    const byKind = Map.groupBy(list, (a) => a.kind);
    const batches: Alert[][] = [];
    for (const group of byKind.values()) {
      if (group.length >= o.groupThreshold) batches.push(group);
      else for (const a of group) batches.push([a]);
    }
    batches.sort((x, y) => (x[0]?.id ?? 0) - (y[0]?.id ?? 0));
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i] ?? [];
      const json = batch.map(alertJson);
      const [first] = json;
      if (!first) continue;
      const ids = batch.map((a) => a.id);
      const message = json.length === 1 ? alertPost(first, o.links) : groupedAlertPost(first.kind, json, o.links);
      let posted: { ts: string };
      try {
        posted = await o.post({ ...message, channel });
      } catch (e) {
        // Slack is likely down for the rest of this pass too: everything
        // still claimed waits as long as this one.
        const wait = await release(ids, e);
        await unclaim(batches.slice(i + 1).flat().map((a) => a.id), wait);
        return;
      }
      succeeded();
      // An alert that resolved before it could be posted says so in the post itself.
      await database.rows(sql`
        update slack_alert_posts p set message_ts = ${posted.ts}, posted_at = now(), claimed_until = null, last_error = null,
          resolution_posted_at = case when a.status = 'resolved' then now() else null end
        from alerts a
        where a.id = p.alert_id and p.alert_id = any(array(select json_array_elements_text(${JSON.stringify(ids)}::text::json)::bigint))`);
    }
  }

  /** Resolved alerts whose post is out: one reply per thread. */
  async function resolve() {
    const ids = await claim("resolve");
    if (ids.length === 0) return;
    const posts = await database.rows<{ alert_id: string | number; message_ts: string; channel: string }>(sql`
      select alert_id, message_ts, channel from slack_alert_posts
      where alert_id = any(array(select json_array_elements_text(${JSON.stringify(ids)}::text::json)::bigint))`);
    const list = new Map((await loadAlerts(ids)).map((a) => [a.id, a]));
    const threads = Map.groupBy(posts, (p) => `${p.channel}\u0000${p.message_ts}`);
    const entries = [...threads.values()];
    for (let i = 0; i < entries.length; i++) {
      const thread = entries[i] as typeof posts;
      const first = thread[0] as (typeof posts)[number];
      const mine = thread.map((p) => Number(p.alert_id));
      const [group] = await database.rows<{ size: string | number; resolved: string | number }>(sql`
        select count(*) as size, count(*) filter (where resolution_posted_at is not null) as resolved
        from slack_alert_posts where message_ts = ${first.message_ts} and channel = ${first.channel}`);
      const size = Number(group?.size ?? mine.length);
      const resolvedSoFar = Number(group?.resolved ?? 0) + mine.length;
      const alertsHere = mine.map((id) => list.get(id)).filter((a): a is Alert => a !== undefined);
      const message = resolutionPost(alertsHere.map(alertJson), { size, resolved: resolvedSoFar }, o.links);
      try {
        await o.post({ ...message, channel: first.channel, threadTs: first.message_ts });
      } catch (e) {
        const wait = await release(mine, e);
        await unclaim(entries.slice(i + 1).flat().map((p) => Number(p.alert_id)), wait);
        return;
      }
      succeeded();
      await database.rows(sql`
        update slack_alert_posts set resolution_posted_at = now(), claimed_until = null, last_error = null
        where alert_id = any(array(select json_array_elements_text(${JSON.stringify(mine)}::text::json)::bigint))`);
    }
  }

  async function pass() {
    try {
      await enqueueNew();
      await announce();
      await resolve();
      const [pending] = await database.rows<{ n: string | number }>(
        sql`select count(*) as n from slack_alert_posts where posted_at is null and channel = ${channel}`,
      );
      slackMetrics.pending.set(Number(pending?.n ?? 0));
    } catch (e) {
      // The database went away: nothing is lost, the outbox is in it.
      if (isDatabaseUnavailable(e)) o.log.once(`slack-pass:${errorText(e)}`, `alert poster: ${errorText(e)}; the outbox is kept, trying again`);
      else reportUnexpected("slack-poster", e, o.log);
    }
  }

  function schedule(ms: number) {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void runNow(), ms);
  }

  async function runNow(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await pass();
        finished++;
        const served = waiting.filter((w) => w.after < finished);
        waiting = waiting.filter((w) => w.after >= finished);
        for (const w of served) w.done();
      } while (again && !stopped);
    })().finally(() => {
      running = null;
      schedule(o.pollIntervalS * 1000);
    });
    return running;
  }

  return {
    start() {
      o.log.info(`posting alerts to Slack channel ${channel}`);
      void runNow();
    },
    /** Something changed (the detector says so): look now rather than at the next tick. */
    nudge() {
      if (!stopped) void runNow();
    },
    /** One pass, awaited (tests). */
    runOnce: runNow,
    /** How many passes have finished. */
    passes: () => finished,
    /**
     * Resolves once a whole pass that starts after this call has finished
     * (rejects if the poster stops first): whatever was in the outbox when
     * it was called has been looked at. A test waits for it before saying
     * that something was not posted.
     */
    nextPass(): Promise<void> {
      // A pass under way may have read the outbox already: the one after it counts.
      const after = running ? finished + 1 : finished;
      return new Promise((done, fail) => waiting.push({ after, done, fail }));
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      for (const w of waiting) w.fail(new Error("the alert poster stopped before its next pass"));
      waiting = [];
    },
  };
}

export type AlertPoster = ReturnType<typeof createAlertPoster>;
