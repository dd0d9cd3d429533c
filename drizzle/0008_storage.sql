CREATE TYPE "public"."task_event_type" AS ENUM('task-sent', 'task-received', 'task-started', 'task-succeeded', 'task-failed', 'task-retried', 'task-revoked', 'task-rejected');--> statement-breakpoint
DROP INDEX "tasks_recent_idx";--> statement-breakpoint
DROP INDEX "tasks_name_recent_idx";--> statement-breakpoint
DROP INDEX "tasks_state_recent_idx";--> statement-breakpoint
DROP INDEX "tasks_worker_recent_idx";--> statement-breakpoint
DROP INDEX "tasks_queue_recent_idx";--> statement-breakpoint
ALTER TABLE "events" DROP CONSTRAINT "events_pkey";--> statement-breakpoint
ALTER TABLE "events" ALTER COLUMN "type" SET DATA TYPE "public"."task_event_type" USING "type"::"public"."task_event_type";--> statement-breakpoint
ALTER TABLE "events" ALTER COLUMN "fields" SET DATA TYPE json;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "fields_in_task" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "events_task_idx" ON "events" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "tasks_recent_idx" ON "tasks" USING btree ("first_seen_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_name_recent_idx" ON "tasks" USING btree ("name","first_seen_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_state_recent_idx" ON "tasks" USING btree ("state","first_seen_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_worker_recent_idx" ON "tasks" USING btree ("worker","first_seen_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_queue_recent_idx" ON "tasks" USING btree ("queue","first_seen_at" DESC NULLS LAST);