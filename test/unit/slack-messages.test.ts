/**
 * What the bot says, without Slack: command parsing, escaping of what tasks
 * carry, Block Kit's size limits, grouped alerts and resolutions.
 */
import { describe, expect, test } from "bun:test";
import { classifySlackError } from "../../bot/alert-poster.ts";
import { parseCommand } from "../../bot/commands.ts";
import { alertPost, groupedAlertPost, helpAnswer, Links, resolutionPost, taskAnswer } from "../../bot/messages.ts";
import { code, esc } from "../../bot/mrkdwn.ts";
import type { Alert, Execution, Task } from "../../src/api/schemas.ts";
import { messageText } from "../support/fake-slack.ts";

const links = new Links("https://c.example");
const NOW = Date.parse("2026-11-24T12:00:00Z") / 1000;

const task = (over: Partial<Task> = {}): Task => ({
  broker: "default",
  id: "6f1c0d6e-1",
  name: "app.charge",
  state: "FAILURE",
  worker: "w1@host",
  queue: "payments",
  routing_key: "payments",
  args: "(42,)",
  kwargs: "{}",
  result: null,
  exception: "Traceback…\nValueError('card declined')",
  traceback: null,
  retries: 1,
  root_id: "6f1c0d6e-1",
  parent_id: null,
  eta: null,
  expires: null,
  revoked_reason: null,
  sent_at: "2026-11-24T11:59:00.000Z",
  received_at: "2026-11-24T11:59:00.100Z",
  started_at: "2026-11-24T11:59:01.000Z",
  finished_at: "2026-11-24T11:59:03.500Z",
  runtime_s: 2.5,
  first_seen_at: "2026-11-24T11:59:00.000Z",
  last_event_at: "2026-11-24T11:59:03.500Z",
  executions: [],
  alerts: [],
  ...over,
});
const run = (worker: string): Execution => ({ worker, retries: 0, received_at: null, started_at: "2026-11-24T11:59:01.000Z", finished_at: null, state: "STARTED" });

/** Every section and field within Block Kit's limits. */
function withinLimits(m: { blocks: any[] }) {
  expect(m.blocks.length).toBeLessThanOrEqual(50);
  for (const b of m.blocks) {
    if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
    for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(2000);
    expect((b.fields ?? []).length).toBeLessThanOrEqual(10);
  }
}

describe("/celery parsing", () => {
  test("commands and their argument", () => {
    expect(parseCommand("task abc-123")).toEqual({ kind: "task", id: "abc-123" });
    expect(parseCommand("  TASK   abc  ")).toEqual({ kind: "task", id: "abc" });
    expect(parseCommand("worker celery@web-1")).toEqual({ kind: "worker", hostname: "celery@web-1" });
    expect(parseCommand("queue default")).toEqual({ kind: "queue", name: "default" });
    expect(parseCommand("alerts")).toEqual({ kind: "alerts" });
    expect(parseCommand("")).toEqual({ kind: "help" });
  });
  test("anything else, a missing or an oversized argument, gets help", () => {
    expect(parseCommand("purge everything")).toEqual({ kind: "help", unknown: "purge everything" });
    expect(parseCommand("task")).toMatchObject({ kind: "help" });
    expect(parseCommand(`task ${"x".repeat(300)}`)).toMatchObject({ kind: "help" });
  });
});

describe("escaping what a task carries", () => {
  test("mentions and links cannot be forged; code spans cannot be broken out of", () => {
    expect(esc("<!channel> & <https://evil|x>")).toBe("&lt;!channel&gt; &amp; &lt;https://evil|x&gt;");
    expect(code("a`b\n*c*")).toBe("`aˋb *c*`");
  });
  test("a task with hostile args, name and a huge exception stays escaped and within Block Kit's limits", () => {
    const m = taskAnswer(
      task({
        name: "<!here> app.x",
        worker: "<@U123>",
        args: `("<https://evil.example|login>", ${"A".repeat(100_000)})`,
        exception: `${"frame\n".repeat(10_000)}Boom("<!everyone>")`,
      }),
      NOW,
      links,
    );
    const text = messageText(m);
    expect(text).not.toMatch(/<!(here|channel|everyone)>|<@U|<https:\/\/evil/);
    expect(text).toContain("&lt;!everyone&gt;");
    expect(text.length).toBeLessThan(6000);
    withinLimits(m);
  });
});

describe("answers", () => {
  test("a task: state, worker, queue, times as Slack dates, runtime, the exception's last line, a link", () => {
    const text = messageText(taskAnswer(task(), NOW, links));
    for (const part of ["*FAILURE*", "app.charge", "`w1@host`", "`payments`", "*Runtime*\n2.5 s", "*Retries*\n1", "ValueError('card declined')", "https://c.example/tasks/6f1c0d6e-1"]) {
      expect(text).toContain(part);
    }
    expect(text).not.toContain("Traceback");
    expect(text).toContain("<!date^1795521541^");
  });
  test("a running task says for how long; two executions are flagged", () => {
    const text = messageText(
      taskAnswer(
        task({ state: "STARTED", finished_at: null, runtime_s: null, exception: null, executions: [run("a@h"), run("b@h")] }),
        NOW,
        links,
      ),
    );
    expect(text).toContain("running for 59.0 s");
    expect(text).toContain(":warning: 2, on `a@h`, `b@h`");
  });
  test("a task that expired in the queue says so", () => {
    const text = messageText(taskAnswer(task({ state: "REVOKED", revoked_reason: "expired", exception: "TaskRevokedError('expired')" }), NOW, links));
    expect(text).toContain("*REVOKED* (expired before a worker took it)");
  });
  test("help lists every command", () => {
    const text = messageText(helpAnswer(links));
    for (const c of ["task <id>", "worker <hostname>", "queue <name>", "alerts", "help"]) expect(text).toContain(`/celery ${c}`);
  });
});

describe("alert posts", () => {
  const alert = (i: number, over: Partial<Alert> = {}): Alert => ({
    broker: "default",
    id: i,
    kind: "task_lost",
    subject: `t${i}`,
    severity: "critical",
    status: "open",
    summary: `app.charge t${i} was STARTED on w1@host, which died`,
    details: { worker: "w1@host", name: "app.charge", state: "STARTED", started_at: "2026-11-24T11:59:01.000Z", task_ids: ["a", "b", "c", "d"] },
    opened_at: "2026-11-24T12:00:00.000Z",
    updated_at: "2026-11-24T12:00:00.000Z",
    resolved_at: null,
    ...over,
  });
  test("one alert: kind, subject linked, summary, details, what to check", () => {
    const m = alertPost(alert(1), links);
    const text = messageText(m);
    expect(m.text).toBe("[critical] Task lost: t1: app.charge t1 was STARTED on w1@host, which died");
    for (const part of ["*Task lost*", "<https://c.example/tasks/t1|t1>", "*worker*\n`w1@host`", "*task ids*\n4: `a`, `b`, `c`, …", "What to check:"]) {
      expect(text).toContain(part);
    }
    withinLimits(m);
  });
  test("twenty at once: one message naming the worker, ten listed, a link to the rest", () => {
    const m = groupedAlertPost("task_lost", Array.from({ length: 20 }, (_, i) => alert(i + 1)), links);
    const text = messageText(m);
    expect(m.text).toBe("[critical] 20 tasks lost on w1@host");
    expect(text).toContain("…and 10 more");
    expect(text).toContain("https://c.example/alerts?kind=task_lost");
    expect(text.match(/^• /gm)).toHaveLength(10);
    withinLimits(m);
  });
  test("resolutions: one alert, part of a group, the whole group", () => {
    const done = (i: number) => alert(i, { status: "resolved", resolved_at: "2026-11-24T12:01:30.000Z", kind: "worker_offline", subject: `w${i}@h` });
    expect(messageText(resolutionPost([done(1)], { size: 1, resolved: 1 }, links))).toContain("*Resolved* after 90.0 s: the worker is sending heartbeats again");
    expect(resolutionPost([done(1), done(2)], { size: 5, resolved: 2 }, links).text).toBe("2 of 5 workers offline resolved");
    expect(messageText(resolutionPost([done(3)], { size: 3, resolved: 3 }, links))).toContain("*All 3 resolved*");
  });
});

describe("Slack failures", () => {
  test("rate limits honour Retry-After; others back off; a refused channel says what to do", () => {
    expect(classifySlackError({ code: "slack_webapi_rate_limited_error", retryAfter: 7 }, 1)).toMatchObject({ retryInS: 7 });
    expect(classifySlackError({ code: "slack_webapi_http_error", statusCode: 503 }, 3)).toMatchObject({ retryInS: 8, reason: "Slack answered HTTP 503" });
    expect(classifySlackError(new Error("socket hang up"), 20).retryInS).toBe(300);
    expect(classifySlackError({ code: "slack_webapi_platform_error", data: { error: "not_in_channel" } }, 1).reason).toContain("/invite");
  });
});
