/**
 * What the bot says, as Block Kit with a plain-text fallback: answers to
 * `/celery …` and alert posts. Each builder is a pure function of the API's
 * JSON shapes (CONTRACT.md) and a clock, so it is tested without Slack.
 */
import type { types } from "@slack/bolt";
import type { Alert, Queue, Task, Worker } from "../src/api/schemas.ts";
import { ago, duration, NEVER_SEEN_HINT, neverSeen, REVOKED_REASON_TEXT, seconds } from "../src/format.ts";
import { bound, code, esc, link, when } from "./mrkdwn.ts";

type KnownBlock = types.KnownBlock;

export interface SlackMessage {
  /** Shown in notifications and by clients that cannot show blocks. */
  text: string;
  blocks: KnownBlock[];
}

/** Builds links into Crisper's pages. */
export class Links {
  constructor(private readonly base: string) {}
  task = (id: string) => `${this.base}/tasks/${encodeURIComponent(id)}`;
  worker = (hostname: string) => `${this.base}/workers/${encodeURIComponent(hostname)}`;
  workers = () => `${this.base}/workers`;
  queues = () => `${this.base}/queues`;
  schedules = () => `${this.base}/schedules`;
  tasks = (query: Record<string, string> = {}) => `${this.base}/tasks${Object.keys(query).length ? `?${new URLSearchParams(query)}` : ""}`;
  alerts = (kind?: string) => `${this.base}/alerts${kind ? `?${new URLSearchParams({ kind })}` : ""}`;
  broker = () => `${this.base}/broker`;
  /** The page about an alert's subject. */
  subject(kind: string, subject: string): string {
    if (TASK_KINDS.has(kind)) return this.task(subject);
    if (HOST_KINDS.has(kind)) return this.worker(subject);
    if (kind === "queue_backlog") return this.queues();
    if (kind === "beat_missed") return this.schedules();
    if (kind === "broker_eviction_risk" || kind === "broker_memory_high") return this.broker();
    if (kind === "tasks_expired") return this.tasks({ name: subject, state: "REVOKED", reason: "expired" });
    return this.alerts(kind);
  }
}

const TASK_KINDS = new Set(["task_lost", "task_stalled", "duplicate_execution", "visibility_timeout_risk"]);
const HOST_KINDS = new Set(["worker_offline", "prefetched_stranded", "events_disabled", "config_risk"]);

const STATE_EMOJI: Record<string, string> = {
  SUCCESS: ":white_check_mark:",
  FAILURE: ":x:",
  STARTED: ":arrow_forward:",
  RECEIVED: ":inbox_tray:",
  PENDING: ":hourglass_flowing_sand:",
  RETRY: ":repeat:",
  REVOKED: ":no_entry_sign:",
  REJECTED: ":no_entry:",
};

const SEVERITY_EMOJI: Record<string, string> = { critical: ":rotating_light:", warning: ":warning:" };

/** Each alert kind in words, and what an engineer should look at first. */
export const KIND_TEXT: Record<string, { title: string; plural: string; check: string; resolved: string }> = {
  worker_offline: {
    title: "Worker offline",
    plural: "workers offline",
    check: "Check the worker's host or container: the OOM killer, a deploy, a crash. The tasks it held are posted as task_lost.",
    resolved: "the worker is sending heartbeats again",
  },
  task_lost: {
    title: "Task lost",
    plural: "tasks lost",
    check: "Its worker died holding it: decide whether to send it again. With acks_late, Redis redelivers it after the visibility timeout.",
    resolved: "the task finished after all, or was sent again",
  },
  task_stalled: {
    title: "Task stalled",
    plural: "tasks stalled",
    check: "Look at what the worker is doing: a hung call, a lock, a slow dependency. Revoke with terminate if it must stop.",
    resolved: "the task is no longer running",
  },
  duplicate_execution: {
    title: "Duplicate execution",
    plural: "duplicate executions",
    check: "The task ran twice: check its side effects (payments, emails). Raise visibility_timeout above your longest task.",
    resolved: "cleared",
  },
  visibility_timeout_risk: {
    title: "Visibility timeout risk",
    plural: "tasks near the visibility timeout",
    check: "Redis will hand this message to another worker when the visibility timeout passes, and it will run twice.",
    resolved: "the task was acknowledged in time",
  },
  prefetched_stranded: {
    title: "Prefetched messages stranded",
    plural: "workers with stranded messages",
    check: "These messages come back only after the visibility timeout; send them again if they cannot wait.",
    resolved: "the messages are back in the queue or done",
  },
  beat_missed: {
    title: "Beat schedule missed",
    plural: "Beat schedules missed",
    check: "Check that `celery beat` is running (one instance) and can reach the broker.",
    resolved: "the periodic task arrived again",
  },
  queue_backlog: {
    title: "Queue backlog",
    plural: "queues backing up",
    check: "Workers are not keeping up: add workers, or find what slowed them.",
    resolved: "the queue is draining again",
  },
  event_gap: {
    title: "Event gap",
    plural: "event gaps",
    check: "Crisper missed events in this window; it reconciled what it could from the result backend and the workers (see details).",
    resolved: "reconciled",
  },
  events_disabled: {
    title: "Task events off",
    plural: "workers without task events",
    check: "Start the worker with -E (or worker_send_task_events=True), or let Crisper enable them (ENABLE_EVENTS).",
    resolved: "task events arrive again",
  },
  config_risk: {
    title: "Worker settings will duplicate or lose work",
    plural: "workers with risky settings",
    check: "Its settings let the broker hand running tasks to another worker (or strand prefetched ones): the fix for each is in the details and on the worker's page.",
    resolved: "the worker runs with safer settings",
  },
  broker_eviction_risk: {
    title: "Broker may evict Celery's keys",
    plural: "brokers that may evict keys",
    check: "Set Redis's maxmemory-policy to noeviction (or give Celery a Redis of its own): queues, the unacked set and results can otherwise vanish without a trace.",
    resolved: "the broker no longer evicts keys",
  },
  broker_memory_high: {
    title: "Broker memory high",
    plural: "brokers short of memory",
    check: "The broker is near its memory limit: drain or purge backlogged queues, expire results sooner (result_expires), or raise maxmemory.",
    resolved: "the broker's memory is back under the limit",
  },
  tasks_expired: {
    title: "Tasks expired in the queue",
    plural: "task names expiring in the queue",
    check: "Workers took these tasks only after their expires had passed, and discarded them unrun: add workers, or give the tasks a longer expires.",
    resolved: "no more tasks expired",
  },
};

const kindText = (kind: string) => KIND_TEXT[kind] ?? { title: kind, plural: `${kind} alerts`, check: "", resolved: "cleared" };

const section = (text: string): KnownBlock => ({ type: "section", text: { type: "mrkdwn", text: bound(text) } });
const context = (...texts: string[]): KnownBlock => ({
  type: "context",
  elements: texts.slice(0, 10).map((t) => ({ type: "mrkdwn", text: bound(t, 2000) })),
});
const fields = (pairs: [string, string][]): KnownBlock => ({
  type: "section",
  fields: pairs.slice(0, 10).map(([k, v]) => ({ type: "mrkdwn", text: bound(`*${k}*\n${v}`, 1990) })),
});

const sinceIso = (iso: string | null, now: number) => (iso ? ` (${ago(now - Date.parse(iso) / 1000)})` : "");

/** The last line of an exception (`ValueError('boom')`), which says the most in the least space. */
function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}

// ---- /celery task <id> -------------------------------------------------------------------

export function taskAnswer(task: Task, now: number, links: Links): SlackMessage {
  const state = task.state;
  const name = task.name ?? "(name unknown)";
  const reason = task.revoked_reason ? ` (${REVOKED_REASON_TEXT[task.revoked_reason]})` : "";
  const head = `${STATE_EMOJI[state] ?? ":grey_question:"} *${esc(state, 20)}*${reason} · ${link(links.task(task.id), name)}\n${code(task.id, 255)}`;
  const took =
    task.runtime_s !== null
      ? seconds(task.runtime_s)
      : task.started_at && !task.finished_at
        ? `running for ${seconds(now - Date.parse(task.started_at) / 1000)}`
        : "—";
  const queued = duration(task.sent_at ?? task.received_at, task.started_at);
  const pairs: [string, string][] = [
    ["Worker", task.worker ? code(task.worker, 120) : "—"],
    ["Queue", task.queue ? code(task.queue, 120) : "—"],
    ["Sent", `${when(task.sent_at)}${sinceIso(task.sent_at, now)}`],
    ["Started", `${when(task.started_at)}${queued ? ` after ${queued} queued` : ""}`],
    ["Finished", `${when(task.finished_at)}${sinceIso(task.finished_at, now)}`],
    ["Runtime", took],
    ["Retries", String(task.retries ?? 0)],
  ];
  const executions = task.executions;
  if (executions.length > 1) {
    const hosts = [...new Set(executions.map((x) => x.worker || "?"))];
    pairs.push(["Executions", `:warning: ${executions.length}, on ${hosts.slice(0, 4).map((h) => code(h, 60)).join(", ")}`]);
  }
  const blocks: KnownBlock[] = [section(head), fields(pairs)];
  const argLines = [`*Args* ${task.args ? code(task.args, 300) : "—"}`];
  if (task.kwargs && task.kwargs !== "{}") argLines.push(`*Kwargs* ${code(task.kwargs, 300)}`);
  if (task.exception) argLines.push(`*Exception* ${code(lastLine(task.exception), 300)}`);
  else if (task.state === "SUCCESS" && task.result !== null) argLines.push(`*Result* ${code(task.result, 200)}`);
  blocks.push(section(argLines.join("\n")));
  const open = task.alerts.filter((a) => a.status === "open");
  if (open.length) {
    blocks.push(
      section(
        [`:rotating_light: *Open alerts*`, ...open.slice(0, 5).map((a) => `• *${esc(kindText(a.kind).title)}*: ${esc(a.summary, 250)}`)].join("\n"),
      ),
    );
  }
  blocks.push(context(`${link(links.task(task.id), "Open in Crisper")} · timeline, traceback and every event`));
  const text = `${state} ${name} ${task.id}${task.worker ? ` on ${task.worker}` : ""}${task.exception ? `: ${lastLine(task.exception)}` : ""}`;
  return { text: esc(text, 500), blocks };
}

export function neverSeenAnswer(id: string, links: Links): SlackMessage {
  const text = `:grey_question: ${neverSeen(code(id, 255))}.\n${esc(NEVER_SEEN_HINT, 1000)}`;
  return { text: esc(neverSeen(id.slice(0, 255)), 300), blocks: [section(text), context(link(links.tasks({ q: id.slice(0, 200) }), "Search for it in Crisper"))] };
}

// ---- /celery worker <hostname> -----------------------------------------------------------

export function workerAnswer(w: Worker, openAlerts: Alert[], now: number, links: Links): SlackMessage {
  const online = w.status === "online";
  const head = `${online ? ":large_green_circle:" : ":red_circle:"} *${online ? "online" : "offline"}* · ${link(links.worker(w.hostname), w.hostname)}${
    !online && w.offline_reason ? ` (${w.offline_reason === "shutdown" ? "shut down cleanly" : "stopped heartbeating"})` : ""
  }`;
  const load = Array.isArray(w.loadavg) ? w.loadavg.map((n) => Number(n).toFixed(2)).join(" ") : "—";
  const pairs: [string, string][] = [
    ["Last heartbeat", `${when(w.last_heartbeat_at)}${sinceIso(w.last_heartbeat_at, now)}`],
    ["Active / reserved", `${w.active ?? "—"} running, ${w.reserved ?? "—"} prefetched`],
    ["Processed", String(w.processed ?? "—")],
    ["Load", load],
    ["Version", w.sw_ver ? `${esc(w.sw_ident ?? "celery", 40)} ${esc(w.sw_ver, 40)}` : "—"],
    [online ? "Online since" : "Offline since", when(online ? w.online_since : w.offline_at)],
  ];
  const blocks: KnownBlock[] = [section(head), fields(pairs)];
  const reserved = w.reserved_tasks;
  if (reserved.length) {
    blocks.push(
      section(
        `*Prefetched, not started* (${reserved.length})\n${reserved
          .slice(0, 5)
          .map((t) => `• ${link(links.task(t.id), t.name ?? t.id)}`)
          .join("\n")}${reserved.length > 5 ? `\n…and ${reserved.length - 5} more` : ""}`,
      ),
    );
  }
  if (openAlerts.length) blocks.push(section(openAlerts.slice(0, 5).map((a) => `:rotating_light: *${esc(kindText(a.kind).title)}*: ${esc(a.summary, 250)}`).join("\n")));
  blocks.push(context(link(links.worker(w.hostname), "Open in Crisper")));
  return { text: esc(`${w.hostname} is ${w.status}`, 300), blocks };
}

export function unknownAnswer(what: "worker" | "queue", name: string, known: string[], url: string): SlackMessage {
  const list = known.length ? `Known ${what}s: ${known.slice(0, 15).map((k) => code(k, 80)).join(", ")}${known.length > 15 ? ", …" : ""}` : `Crisper knows no ${what}s yet.`;
  return {
    text: esc(`No ${what} named ${name}`, 300),
    blocks: [section(`:grey_question: Crisper knows no ${what} named ${code(name, 120)}.\n${list}`), context(link(url, `All ${what}s in Crisper`))],
  };
}

// ---- /celery queue <name> ----------------------------------------------------------------

export function queueAnswer(q: Queue, openAlerts: Alert[], now: number, links: Links): SlackMessage {
  const priorities = Object.entries(q.by_priority)
    .filter(([, n]) => n > 0)
    .map(([p, n]) => `${esc(p, 5)}: ${n}`)
    .join(", ");
  const pairs: [string, string][] = [
    ["Waiting", String(q.depth)],
    ["By priority", priorities || "—"],
    ["Unacked", `${q.unacked} delivered, not acknowledged`],
    ["Oldest unacked", q.oldest_unacked_age_s !== null ? seconds(q.oldest_unacked_age_s) : "—"],
    ["Sampled", `${when(q.sampled_at)}${sinceIso(q.sampled_at, now)}`],
  ];
  const blocks: KnownBlock[] = [section(`:inbox_tray: Queue ${link(links.queues(), q.name)}`), fields(pairs)];
  if (openAlerts.length) blocks.push(section(openAlerts.slice(0, 5).map((a) => `:warning: *${esc(kindText(a.kind).title)}*: ${esc(a.summary, 250)}`).join("\n")));
  blocks.push(context(link(links.queues(), "Depth history in Crisper")));
  return { text: esc(`Queue ${q.name}: ${q.depth} waiting, ${q.unacked} unacked`, 300), blocks };
}

// ---- /celery alerts ----------------------------------------------------------------------

export function alertsAnswer(open: Alert[], now: number, links: Links): SlackMessage {
  if (open.length === 0) {
    return { text: "No open alerts.", blocks: [section(":large_green_circle: No open alerts."), context(link(links.alerts(), "Alert history in Crisper"))] };
  }
  const shown = open.slice(0, 15);
  const lines = shown.map(
    (a) =>
      `${SEVERITY_EMOJI[a.severity] ?? ":warning:"} *${esc(kindText(a.kind).title)}* · ${link(links.subject(a.kind, a.subject), a.subject, 80)} · ${ago(now - Date.parse(a.opened_at) / 1000)}\n${esc(a.summary, 160)}`,
  );
  const blocks: KnownBlock[] = [section(`*${open.length} open alert${open.length === 1 ? "" : "s"}*`)];
  for (let i = 0; i < lines.length; i += 5) blocks.push(section(lines.slice(i, i + 5).join("\n")));
  blocks.push(context(`${open.length > shown.length ? `${open.length - shown.length} more · ` : ""}${link(links.alerts(), "All alerts in Crisper")}`));
  return { text: `${open.length} open alert${open.length === 1 ? "" : "s"}`, blocks };
}

// ---- /celery help ------------------------------------------------------------------------

export function helpAnswer(links: Links, unknown?: string): SlackMessage {
  const lines = [
    ...(unknown !== undefined ? [`I don't know ${code(unknown || "(nothing)", 60)}. Here is what I can do:`] : ["*Crisper* tells you the truth about your Celery tasks."]),
    "`/celery task <id>`: a task's state, worker, times, args, exception and alerts",
    "`/celery worker <hostname>`: is it alive, what is it running and holding",
    "`/celery queue <name>`: how many wait, how many are delivered but unacknowledged",
    "`/celery alerts`: what is wrong right now",
    "`/celery help`: this",
  ];
  return { text: "Crisper: /celery task <id> | worker <hostname> | queue <name> | alerts | help", blocks: [section(lines.join("\n")), context(link(links.tasks(), "Crisper"))] };
}

// ---- alerts posted to the channel --------------------------------------------------------

const detailValue = (v: unknown): string | null => {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(v) ? when(v) : code(v, 120);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `${v.length}: ${v.slice(0, 3).map((x) => code(String(x), 40)).join(", ")}${v.length > 3 ? ", …" : ""}`;
  return null;
};

/** One alert, as posted when it opens. `resolvedAt` when it cleared before Slack could be told. */
export function alertPost(a: Alert, links: Links): SlackMessage {
  const k = kindText(a.kind);
  const head = `${SEVERITY_EMOJI[a.severity] ?? ":warning:"} *${esc(k.title)}* · ${link(links.subject(a.kind, a.subject), a.subject)}\n${esc(a.summary, 700)}`;
  const pairs = Object.entries(a.details)
    .map(([key, v]) => [esc(key.replaceAll("_", " "), 40), detailValue(v)] as [string, string | null])
    .filter((p): p is [string, string] => p[1] !== null)
    .slice(0, 8);
  const blocks: KnownBlock[] = [section(head)];
  if (pairs.length) blocks.push(fields(pairs));
  if (k.check) blocks.push(context(`*What to check:* ${k.check}`));
  const status = a.status === "resolved" ? ` · :white_check_mark: already resolved ${when(a.resolved_at)}` : "";
  blocks.push(context(`${link(links.subject(a.kind, a.subject), "Open in Crisper")} · ${a.kind} #${a.id} · opened ${when(a.opened_at)}${status}`));
  return { text: esc(`[${a.severity}] ${k.title}: ${a.subject}: ${a.summary}`, 500), blocks };
}

/** Many alerts of one kind that opened together (a worker pool died): one message. */
export function groupedAlertPost(kind: string, list: Alert[], links: Links): SlackMessage {
  const k = kindText(kind);
  const severity = list[0]?.severity ?? "warning";
  const workers = [...new Set(list.flatMap((a) => (typeof a.details.worker === "string" ? [a.details.worker] : [])))];
  const where = workers.length > 1 ? ` on ${workers.length} workers` : workers[0] !== undefined ? ` on ${code(workers[0], 120)}` : "";
  const shown = list.slice(0, 10);
  const lines = shown.map((a) => {
    const name = typeof a.details.name === "string" ? ` ${esc(a.details.name, 80)}` : "";
    const state = typeof a.details.state === "string" ? ` (${esc(a.details.state, 12)})` : "";
    return `• ${link(links.subject(a.kind, a.subject), a.subject, 60)}${name}${state}`;
  });
  const blocks: KnownBlock[] = [
    section(`${SEVERITY_EMOJI[severity] ?? ":warning:"} *${list.length} ${esc(k.plural)}*${where}\n${esc(list[0]?.summary ?? "", 300)}`),
    section(`${lines.join("\n")}${list.length > shown.length ? `\n…and ${list.length - shown.length} more` : ""}`),
  ];
  if (k.check) blocks.push(context(`*What to check:* ${k.check}`));
  blocks.push(context(`${link(links.alerts(kind), `All ${list.length} in Crisper`)} · ${kind} · opened ${when(list[0]?.opened_at ?? null)}`));
  return { text: esc(`[${severity}] ${list.length} ${k.plural}${workers.length === 1 ? ` on ${workers[0]}` : ""}`, 500), blocks };
}

/**
 * The reply in an alert's thread when it (or some of a group) resolves.
 * `resolvedInGroup` counts those of the group resolved so far, these included.
 */
export function resolutionPost(resolved: Alert[], group: { size: number; resolved: number }, links: Links): SlackMessage {
  const groupSize = group.size;
  const first = resolved[0];
  const k = kindText(first?.kind ?? "");
  const lasted = (a: Alert) => duration(a.opened_at, a.resolved_at) ?? "?";
  if (groupSize <= 1 && first) {
    const text = `:white_check_mark: *Resolved* after ${lasted(first)}: ${esc(k.resolved)}. ${link(links.subject(first.kind, first.subject), first.subject)}`;
    return { text: esc(`Resolved: ${k.title}: ${first.subject}`, 300), blocks: [section(text)] };
  }
  const all = group.resolved >= groupSize;
  const lines = resolved.slice(0, 10).map((a) => `• ${link(links.subject(a.kind, a.subject), a.subject, 60)} after ${lasted(a)}`);
  const text = `:white_check_mark: *${all ? `All ${groupSize}` : `${group.resolved} of ${groupSize}`} resolved*: ${esc(k.resolved)}\n${lines.join("\n")}${resolved.length > 10 ? `\n…and ${resolved.length - 10} more` : ""}`;
  return { text: `${group.resolved} of ${groupSize} ${k.plural} resolved`, blocks: [section(text)] };
}
