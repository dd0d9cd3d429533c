DROP INDEX "alerts_open_idx";--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "queue_samples" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "queues" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "schedules" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_open_idx" ON "alerts" USING btree ("kind","subject","broker") WHERE status = 'open';--> statement-breakpoint
ALTER TABLE "queue_samples" DROP CONSTRAINT "queue_samples_pkey";
--> statement-breakpoint
ALTER TABLE "queue_samples" ADD CONSTRAINT "queue_samples_pkey" PRIMARY KEY("broker","queue","sampled_at");