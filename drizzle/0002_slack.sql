CREATE TABLE "slack_alert_posts" (
	"alert_id" bigint PRIMARY KEY NOT NULL,
	"channel" text NOT NULL,
	"message_ts" text,
	"posted_at" timestamp with time zone,
	"resolution_posted_at" timestamp with time zone,
	"claimed_until" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "slack_channels" (
	"channel" text PRIMARY KEY NOT NULL,
	"since" timestamp with time zone NOT NULL,
	"last_alert_id" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "slack_alert_posts" ADD CONSTRAINT "slack_alert_posts_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "slack_alert_posts_unposted_idx" ON "slack_alert_posts" USING btree ("alert_id") WHERE posted_at is null;--> statement-breakpoint
CREATE INDEX "slack_alert_posts_unresolved_idx" ON "slack_alert_posts" USING btree ("alert_id") WHERE posted_at is not null and resolution_posted_at is null;--> statement-breakpoint
CREATE INDEX "slack_alert_posts_message_idx" ON "slack_alert_posts" USING btree ("message_ts");