-- Where an event came from becomes bit 14 of fields_in_task (store/shared-fields.ts,
-- FROM_RESULT_BACKEND) instead of a text column: kept before the column goes.
UPDATE "events" SET "fields_in_task" = "fields_in_task" | 16384 WHERE "source" = 'result-backend';--> statement-breakpoint
ALTER TABLE "events" DROP COLUMN "source";
