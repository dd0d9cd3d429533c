-- Several brokers (BROKERS): every record carries its broker; workers and
-- queues are keyed by (broker, name), since two clusters may both have a
-- celery@web1. Written in this order by hand: drizzle-kit cannot drop a
-- primary key declared on a column (PostgreSQL named it <table>_pkey), and it
-- would add the new keys before the column they use.
DROP INDEX "alerts_open_idx";--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "queue_samples" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "queues" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "schedules" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "broker" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_open_idx" ON "alerts" USING btree ("kind","subject","broker") WHERE status = 'open';--> statement-breakpoint
ALTER TABLE "queue_samples" DROP CONSTRAINT "queue_samples_pkey";--> statement-breakpoint
ALTER TABLE "queue_samples" ADD CONSTRAINT "queue_samples_pkey" PRIMARY KEY("broker","queue","sampled_at");--> statement-breakpoint
ALTER TABLE "workers" DROP CONSTRAINT "workers_pkey";--> statement-breakpoint
ALTER TABLE "queues" DROP CONSTRAINT "queues_pkey";--> statement-breakpoint
ALTER TABLE "queues" ADD CONSTRAINT "queues_pkey" PRIMARY KEY("broker","name");--> statement-breakpoint
ALTER TABLE "workers" ADD CONSTRAINT "workers_pkey" PRIMARY KEY("broker","hostname");
