/**
 * Slack's endpoint when the bot is not configured: it says how to turn it
 * on. Apart from slack-app.ts, so that a Crisper without Slack never loads
 * Bolt (about 20 MB of a process's memory; README, Benchmarks).
 */
export const SLACK_EVENTS_PATH = "/slack/events";

export const SLACK_OFF = {
  path: SLACK_EVENTS_PATH,
  fetch: () => Response.json({ error: "the Slack bot is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (README, Slack)" }, { status: 404 }),
};
