CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"target" text NOT NULL,
	"outcome" text NOT NULL,
	"status" integer NOT NULL,
	"detail" jsonb NOT NULL,
	"ip" text
);
--> statement-breakpoint
CREATE TABLE "task_retries" (
	"task_id" text PRIMARY KEY NOT NULL,
	"retry_of" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_log_recent_idx" ON "audit_log" USING btree ("at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "task_retries_retry_of_idx" ON "task_retries" USING btree ("retry_of");