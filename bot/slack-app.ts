/**
 * The Slack bot: @slack/bolt with its HTTPReceiver answering `/celery`, and
 * the alert poster. Slack's requests arrive on the web server's port at
 * `POST /slack/events`; the web server is Bun.serve with Hono, not a node
 * http.Server, so `handleSlackRequest` hands each request to the receiver's
 * own `requestListener` (its signature check with the 5-minute replay
 * window, its parsing, its 3-second ack timer) through a small node-style
 * request/response pair. The body is read here first, counted as it comes:
 * past Slack's size it is cut off with 413, never buffered whole.
 *
 * Who may ask: anyone whose request Slack signs, which is any member of
 * the workspace the app is installed in (README, Slack). The bot answers
 * only with what the pages show and changes nothing.
 *
 * Slack's `auth.test` (the bot's own ids) is asked at start and again in the
 * background until it answers; a request never waits for it, so a signed
 * command is answered while Slack's Web API is unreachable.
 */
import { Readable } from "node:stream";
import { App, type Authorize, HTTPReceiver, LogLevel, type Logger as SlackLogger, webApi } from "@slack/bolt";
import { readAtMost, tooLarge } from "../src/http/requests.ts";
import type { Logger } from "../src/log.ts";
import { slackMetrics } from "../src/metrics.ts";
import type { Database } from "../src/store/database.ts";
import { type AlertPoster, createAlertPoster } from "./alert-poster.ts";
import { answer, parseCommand } from "./commands.ts";
import type { Links, SlackMessage } from "./messages.ts";

import { SLACK_EVENTS_PATH } from "./slack-off.ts";

/** Slack's requests are small (a slash command is a few KB); anything past 1 MB is not from Slack. */
export const MAX_SLACK_BODY_BYTES = 1024 * 1024;
/** How often a missing bot identity is asked for again, when a request comes. */
const IDENTITY_RETRY_MS = 60_000;

export interface SlackBotOptions {
  token: string;
  signingSecret: string;
  /** Slack's Web API base, ending in `/api/` (SLACK_API_URL; tests point it at a stand-in). */
  apiUrl?: string;
  /** Where alerts go; without it the bot answers commands only. */
  alertChannel?: string;
  groupThreshold: number;
  pollIntervalS: number;
  database: Database;
  links: Links;
  log: Logger;
  /** Post alerts from this process (serve, bot) or only answer commands (web). */
  postAlerts: boolean;
  /** An answer ready within this is sent with the acknowledgement; a slower one goes through response_url. */
  quickAnswerMs?: number;
}

/** Bolt's logger interface over Crisper's one-line logs. */
function boltLogger(log: Logger): SlackLogger {
  let level = LogLevel.INFO;
  return {
    debug: (...m: unknown[]) => log.debug(m.map(String).join(" ")),
    info: (...m: unknown[]) => log.info(m.map(String).join(" ")),
    // Bolt warns on every refused request (a bad signature, say): once per
    // distinct message, so a flood of forged requests is one line, not a million.
    warn: (...m: unknown[]) => {
      const text = m.map(String).join(" ").slice(0, 300);
      log.once(`bolt:${text}`, text);
    },
    error: (...m: unknown[]) => log.error(m.map(String).join(" ")),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

export function createSlackBot(o: SlackBotOptions) {
  const logger = boltLogger(o.log);
  const receiver = new HTTPReceiver({
    signingSecret: o.signingSecret,
    endpoints: SLACK_EVENTS_PATH,
    logger,
    // Acknowledge first: Slack gives a request 3 seconds.
    processBeforeResponse: false,
  });
  const clientOptions = {
    slackApiUrl: o.apiUrl,
    // Retries are the alert poster's job (durable, with backoff): the
    // client gives up at once and says why.
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
  };
  const client = new webApi.WebClient(o.token, { ...clientOptions, logger });

  // The bot's ids, from auth.test. Bolt given only a token calls auth.test
  // before every request it handles (with token verification off) and
  // refuses the request when Slack's API does not answer; given `authorize`,
  // it asks this instead, which never waits on Slack.
  let identity: { botId?: string; botUserId?: string; user?: string; team?: string } | null = null;
  let identityAskedAt = 0;
  let asking: Promise<void> | null = null;
  const learnIdentity = () => {
    identityAskedAt = Date.now();
    asking ??= client.auth
      .test()
      .then((who) => {
        identity = { botId: who.bot_id, botUserId: who.user_id, user: who.user, team: who.team };
      })
      .finally(() => {
        asking = null;
      });
    return asking;
  };
  const authorize: Authorize<boolean> = async () => {
    if (!identity && !asking && Date.now() - identityAskedAt > IDENTITY_RETRY_MS) {
      learnIdentity().catch((e: Error) => o.log.once(`auth.test:${e.message}`, `Slack auth.test failed: ${e.message}; commands are answered meanwhile`));
    }
    return { botToken: o.token, botId: identity?.botId, botUserId: identity?.botUserId };
  };
  const app = new App({ authorize, receiver, logger, clientOptions });

  const quickAnswerMs = o.quickAnswerMs ?? 2000;
  app.command("/celery", async ({ command, ack, respond }) => {
    const parsed = parseCommand(command.text ?? "");
    slackMetrics.commands.inc({ command: parsed.kind });
    const failed = (e: unknown): SlackMessage => {
      o.log.warn(`/celery ${parsed.kind}: ${(e as Error).message}`);
      return { text: "Crisper could not answer: its database did not respond. Try again in a moment.", blocks: [] };
    };
    const work = answer(parsed, o.database, o.links).catch(failed);
    const quick = await Promise.race([work, Bun.sleep(quickAnswerMs).then(() => null)]);
    if (quick) {
      await ack({ response_type: "ephemeral", ...withBlocks(quick) });
      return;
    }
    await ack({ response_type: "ephemeral", text: "Looking that up…" });
    await respond({ response_type: "ephemeral", replace_original: true, ...withBlocks(await work) });
  });

  let poster: AlertPoster | null = null;
  if (o.postAlerts && o.alertChannel) {
    poster = createAlertPoster({
      database: o.database,
      channel: o.alertChannel,
      links: o.links,
      groupThreshold: o.groupThreshold,
      pollIntervalS: o.pollIntervalS,
      log: o.log,
      async post(m) {
        const r = await client.chat.postMessage({
          channel: m.channel,
          text: m.text,
          blocks: m.blocks,
          ...(m.threadTs ? { thread_ts: m.threadTs } : {}),
          unfurl_links: false,
          unfurl_media: false,
        });
        return { ts: String(r.ts), channel: String(r.channel ?? m.channel) };
      },
    });
  }

  return {
    poster,
    /** Where the web server mounts `fetch`. */
    path: SLACK_EVENTS_PATH,
    /** Hands a request from Hono to Bolt's HTTPReceiver and returns its answer. */
    async fetch(req: Request): Promise<Response> {
      const declared = Number(req.headers.get("content-length") ?? 0);
      if (declared > MAX_SLACK_BODY_BYTES) return tooLarge(MAX_SLACK_BODY_BYTES);
      // A chunked body declares nothing: counted while read, cut off past the limit.
      const body = await readAtMost(req.body, MAX_SLACK_BODY_BYTES);
      if (!body) return tooLarge(MAX_SLACK_BODY_BYTES);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      // The body is already read: `rawBody` tells Bolt not to read the stream.
      const nodeReq = Object.assign(Readable.from([]), { rawBody: body, headers, url: new URL(req.url).pathname, method: req.method });
      return new Promise<Response>((resolve) => {
        const res = new ResponseCollector(resolve);
        try {
          receiver.requestListener(nodeReq as never, res as never);
        } catch {
          res.writeHead(404).end();
        }
      });
    },
    async start() {
      poster?.start();
      try {
        await learnIdentity();
        o.log.info(`Slack bot on as ${identity?.user ?? "?"} in ${identity?.team ?? "?"}; /celery requests at ${SLACK_EVENTS_PATH}`);
      } catch (e) {
        o.log.warn(
          `Slack token check (auth.test) failed: ${e instanceof Error ? e.message : String(e)}; commands are still answered, alerts kept until Slack takes them`,
        );
      }
    },
    async stop() {
      await poster?.stop();
    },
  };
}

export type SlackBot = ReturnType<typeof createSlackBot>;

const withBlocks = (m: SlackMessage) => (m.blocks.length ? { text: m.text, blocks: m.blocks } : { text: m.text });

/** The parts of node's ServerResponse that Bolt's receiver uses, collected into a fetch Response. */
class ResponseCollector {
  headersSent = false;
  private status = 200;
  private headers = new Headers();
  constructor(private readonly done: (r: Response) => void) {}
  setHeader(name: string, value: string) {
    this.headers.set(name, value);
    return this;
  }
  writeHead(status: number, headers?: Record<string, string>) {
    this.status = status;
    for (const [k, v] of Object.entries(headers ?? {})) this.headers.set(k, v);
    this.headersSent = true;
    return this;
  }
  end(body?: string | Buffer) {
    this.headersSent = true;
    const content = body === undefined || body === "" ? null : typeof body === "string" ? body : new Uint8Array(body);
    this.done(new Response(content, { status: this.status, headers: this.headers }));
    return this;
  }
}
