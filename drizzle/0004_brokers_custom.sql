-- Workers and queues are keyed by (broker, name) from the next migration on.
-- drizzle-kit cannot drop a primary key declared on a column (it does not
-- know the constraint's name): PostgreSQL named them <table>_pkey.
ALTER TABLE "workers" DROP CONSTRAINT "workers_pkey";--> statement-breakpoint
ALTER TABLE "queues" DROP CONSTRAINT "queues_pkey";
