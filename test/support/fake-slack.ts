/**
 * A stand-in for Slack: the only fake the suite allows. It answers the Web
 * API calls Crisper makes (`auth.test`, `chat.postMessage`) at SLACK_API_URL,
 * takes `response_url` posts, records every call, and can be told to fail
 * the next calls (HTTP 429 with Retry-After, 5xx). It also signs slash
 * commands the way Slack signs them.
 */
import { createHmac } from "node:crypto";

export interface SlackCall {
  /** `chat.postMessage`, `auth.test`, … or `response_url`. */
  method: string;
  body: Record<string, any>;
  /** What the stand-in answered. */
  status: number;
  at: number;
}

export interface FakeSlack {
  url: string;
  /** SLACK_API_URL for Crisper. */
  apiUrl: string;
  calls: SlackCall[];
  /** Successful chat.postMessage calls, in order. */
  posts(): (Record<string, any> & { ts: string })[];
  /** The next `n` calls to `method` (for `channel`, if given) get this answer instead. */
  failNext(method: string, n: number, answer: { status: number; headers?: Record<string, string>; channel?: string }): void;
  responseUrl(id: string): string;
  stop(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const failures: { method: string; channel?: string; left: number; status: number; headers: Record<string, string> }[] = [];
  let seq = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const method = path.startsWith("/api/") ? path.slice(5) : path.startsWith("/respond/") ? "response_url" : path;
      const text = await req.text();
      let body: Record<string, any> = {};
      if ((req.headers.get("content-type") ?? "").includes("json")) body = text ? JSON.parse(text) : {};
      else for (const [k, v] of new URLSearchParams(text)) body[k] = k === "blocks" || k === "attachments" ? JSON.parse(v) : v;
      const failure = failures.find((f) => f.method === method && f.left > 0 && (f.channel === undefined || f.channel === body.channel));
      if (failure) {
        failure.left--;
        calls.push({ method, body, status: failure.status, at: Date.now() });
        return Response.json({ ok: false, error: failure.status === 429 ? "ratelimited" : "fatal_error" }, { status: failure.status, headers: failure.headers });
      }
      calls.push({ method, body, status: 200, at: Date.now() });
      if (method === "auth.test") return Response.json({ ok: true, url: "https://lab.slack.com/", team: "Lab", user: "crisper", team_id: "T1", user_id: "U1", bot_id: "B1" });
      if (method === "chat.postMessage") {
        const ts = `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, "0")}`;
        Object.assign(body, { ts });
        return Response.json({ ok: true, channel: body.channel, ts, message: { text: body.text } });
      }
      if (method === "response_url") return new Response("ok");
      return Response.json({ ok: false, error: "unknown_method" });
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    apiUrl: `${url}/api/`,
    calls,
    posts: () => calls.filter((c) => c.method === "chat.postMessage" && c.status === 200).map((c) => c.body as any),
    failNext(method, n, answer) {
      failures.push({ method, channel: answer.channel, left: n, status: answer.status, headers: answer.headers ?? {} });
    },
    responseUrl: (id) => `${url}/respond/${id}`,
    stop: async () => {
      await server.stop(true);
    },
  };
}

/** Slack's request signature: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret. */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

/** Sends `/celery <text>` to Crisper as Slack would; `timestamp`/`signature` override for the refusal tests. */
export async function sendSlashCommand(
  crisperUrl: string,
  text: string,
  o: { secret: string; responseUrl: string; timestamp?: number; signature?: string },
): Promise<{ status: number; body: any; ms: number }> {
  const body = new URLSearchParams({
    token: "legacy-verification-token",
    team_id: "T1",
    team_domain: "lab",
    channel_id: "C1",
    channel_name: "oncall",
    user_id: "U2",
    user_name: "oncall-engineer",
    command: "/celery",
    text,
    api_app_id: "A1",
    response_url: o.responseUrl,
    trigger_id: "1.2.3",
  }).toString();
  const ts = o.timestamp ?? Math.floor(Date.now() / 1000);
  const started = performance.now();
  const res = await fetch(`${crisperUrl}/slack/events`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": o.signature ?? slackSignature(o.secret, ts, body),
    },
    body,
  });
  const raw = await res.text();
  let parsed: any = raw;
  try {
    parsed = raw ? JSON.parse(raw) : null;
  } catch {}
  return { status: res.status, body: parsed, ms: performance.now() - started };
}

/** All the text of a Slack message: fallback, sections, fields, context. */
export function messageText(m: { text?: string; blocks?: any[] }): string {
  const parts: string[] = [m.text ?? ""];
  for (const b of m.blocks ?? []) {
    if (b.text?.text) parts.push(b.text.text);
    for (const f of b.fields ?? []) parts.push(f.text);
    for (const e of b.elements ?? []) if (e.text) parts.push(typeof e.text === "string" ? e.text : e.text.text);
  }
  return parts.join("\n");
}
