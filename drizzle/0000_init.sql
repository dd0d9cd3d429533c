CREATE TABLE "events" (
	"task_id" text NOT NULL,
	"key" bigint NOT NULL,
	"type" text NOT NULL,
	"hostname" text NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"local_received" timestamp with time zone NOT NULL,
	"source" text NOT NULL,
	"fields" jsonb NOT NULL,
	CONSTRAINT "events_pkey" PRIMARY KEY("task_id","key")
);
--> statement-breakpoint
CREATE TABLE "queue_samples" (
	"queue" text NOT NULL,
	"sampled_at" timestamp with time zone NOT NULL,
	"depth" integer NOT NULL,
	"by_priority" jsonb NOT NULL,
	"unacked" integer NOT NULL,
	"oldest_unacked_age_s" double precision,
	CONSTRAINT "queue_samples_pkey" PRIMARY KEY("queue","sampled_at")
);
--> statement-breakpoint
CREATE TABLE "queues" (
	"name" text PRIMARY KEY NOT NULL,
	"depth" integer NOT NULL,
	"by_priority" jsonb NOT NULL,
	"unacked" integer NOT NULL,
	"oldest_unacked_age_s" double precision,
	"sampled_at" timestamp with time zone NOT NULL,
	"first_seen_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tasks" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text,
	"args" text,
	"kwargs" text,
	"queue" text,
	"routing_key" text,
	"exchange" text,
	"root_id" text,
	"parent_id" text,
	"eta" text,
	"expires" text,
	"info_source" smallint DEFAULT 0 NOT NULL,
	"state" text NOT NULL,
	"state_key" bigint NOT NULL,
	"worker" text,
	"worker_key" bigint DEFAULT 0 NOT NULL,
	"result" text,
	"runtime" double precision,
	"result_key" bigint DEFAULT 0 NOT NULL,
	"exception" text,
	"traceback" text,
	"exception_key" bigint DEFAULT 0 NOT NULL,
	"retries" integer,
	"sent_at" timestamp with time zone,
	"received_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"first_seen_at" timestamp with time zone NOT NULL,
	"last_event_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "worker_events" (
	"hostname" text NOT NULL,
	"key" bigint NOT NULL,
	"type" text NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"local_received" timestamp with time zone NOT NULL,
	"fields" jsonb NOT NULL,
	CONSTRAINT "worker_events_pkey" PRIMARY KEY("hostname","key")
);
--> statement-breakpoint
CREATE TABLE "workers" (
	"hostname" text PRIMARY KEY NOT NULL,
	"last_heartbeat_at" timestamp with time zone,
	"stats_at" timestamp with time zone,
	"freq" double precision,
	"active" integer,
	"processed" integer,
	"loadavg" jsonb,
	"pid" integer,
	"sw_ident" text,
	"sw_ver" text,
	"sw_sys" text,
	"online_at" timestamp with time zone,
	"offline_at" timestamp with time zone,
	"first_seen_at" timestamp with time zone NOT NULL,
	"reserved" integer,
	"reserved_tasks" jsonb,
	"active_tasks" jsonb,
	"inspected_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "tasks_recent_idx" ON "tasks" USING btree ("first_seen_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_name_recent_idx" ON "tasks" USING btree ("name","first_seen_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_state_recent_idx" ON "tasks" USING btree ("state","first_seen_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_worker_recent_idx" ON "tasks" USING btree ("worker","first_seen_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_queue_recent_idx" ON "tasks" USING btree ("queue","first_seen_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "tasks_unfinished_idx" ON "tasks" USING btree ("state","started_at") WHERE state in ('PENDING', 'RECEIVED', 'STARTED', 'RETRY');