import { sql } from "drizzle-orm";
import { bigint, index, integer, pgTable, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";
import { alerts } from "./alerts.ts";

/**
 * The Slack bot's outbox: one row per alert it has taken on. Because it lives
 * in the database, an alert that could not be posted (Slack down, rate
 * limited, the bot restarted) is still waiting here and is posted later.
 * Alerts opened together and posted as one grouped message share its
 * `message_ts`, and their resolutions go into that message's thread.
 */
export const slackAlertPosts = pgTable(
  "slack_alert_posts",
  {
  alertId: bigint("alert_id", { mode: "number" })
    .primaryKey()
    .references(() => alerts.id, { onDelete: "cascade" }),
  channel: text("channel").notNull(),
  /** Slack's id (`ts`) of the message that announced the alert. */
  messageTs: text("message_ts"),
  postedAt: ts("posted_at"),
  resolutionPostedAt: ts("resolution_posted_at"),
  /** A poster's lease, so two bot processes never post the same alert at once. */
  claimedUntil: ts("claimed_until"),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: ts("next_attempt_at"),
  lastError: text("last_error"),
  },
  (t) => [
    // The bot's two questions every pass: what is not posted yet, and what
    // was posted but has not had its resolution told.
    index("slack_alert_posts_unposted_idx").on(t.alertId).where(sql`posted_at is null`),
    index("slack_alert_posts_unresolved_idx").on(t.alertId).where(sql`posted_at is not null and resolution_posted_at is null`),
    index("slack_alert_posts_message_idx").on(t.messageTs),
  ],
);

/**
 * Per alert channel: since when alerts go there, and the highest alert id
 * below which every alert has its outbox row. A new channel gets the alerts
 * open at that moment, not the old history; after that, every alert opened
 * gets a row, even one that resolved before Slack could be told.
 */
export const slackChannels = pgTable("slack_channels", {
  channel: text("channel").primaryKey(),
  since: ts("since").notNull(),
  lastAlertId: bigint("last_alert_id", { mode: "number" }).notNull(),
});
