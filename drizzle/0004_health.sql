CREATE TABLE "broker_samples" (
	"broker" text NOT NULL,
	"sampled_at" timestamp with time zone NOT NULL,
	"kind" text NOT NULL,
	"version" text,
	"uptime_s" double precision,
	"used_memory_bytes" bigint,
	"max_memory_bytes" bigint,
	"max_memory_policy" text,
	"connected_clients" integer,
	"ops_per_second" double precision,
	"evicted_keys" bigint,
	"memory_alarm" boolean,
	"disk_alarm" boolean,
	"disk_free_bytes" bigint,
	CONSTRAINT "broker_samples_pkey" PRIMARY KEY("broker","sampled_at")
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "expired" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "tasks_expired_recent_idx" ON "tasks" USING btree ("first_seen_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE expired;--> statement-breakpoint
CREATE INDEX "tasks_expired_finished_idx" ON "tasks" USING btree ("finished_at") WHERE expired;