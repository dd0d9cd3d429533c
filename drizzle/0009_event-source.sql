-- Where an event came from becomes bit 14 of fields_in_task (store/shared-fields.ts,
-- FROM_RESULT_BACKEND) instead of a text column. The table is written anew
-- rather than the column dropped: a dropped column stays in every row as a
-- null, and its null bitmap would take back the 8 bytes a row saves.
CREATE TABLE "events_new" (
	"task_id" text NOT NULL,
	"key" bigint NOT NULL,
	"type" "public"."task_event_type" NOT NULL,
	"hostname" text NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"local_received" timestamp with time zone NOT NULL,
	"fields" json NOT NULL,
	"fields_in_task" smallint DEFAULT 0 NOT NULL
);--> statement-breakpoint
INSERT INTO "events_new" ("task_id", "key", "type", "hostname", "timestamp", "local_received", "fields", "fields_in_task")
	SELECT "task_id", "key", "type", "hostname", "timestamp", "local_received", "fields",
		"fields_in_task" | (CASE WHEN "source" = 'result-backend' THEN 16384 ELSE 0 END)::smallint
	FROM "events";--> statement-breakpoint
DROP TABLE "events";--> statement-breakpoint
ALTER TABLE "events_new" RENAME TO "events";--> statement-breakpoint
CREATE INDEX "events_task_idx" ON "events" USING btree ("task_id");
