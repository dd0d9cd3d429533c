CREATE TABLE "task_stats" (
	"minute" timestamp with time zone NOT NULL,
	"name" text NOT NULL,
	"queue" text NOT NULL,
	"succeeded" integer NOT NULL,
	"failed" integer NOT NULL,
	"retried" integer NOT NULL,
	"revoked" integer NOT NULL,
	"expired" integer NOT NULL,
	"runtime_bins" smallint[] NOT NULL,
	"runtime_counts" integer[] NOT NULL,
	"wait_bins" smallint[] NOT NULL,
	"wait_counts" integer[] NOT NULL,
	CONSTRAINT "task_stats_pkey" PRIMARY KEY("name","minute","queue")
);
--> statement-breakpoint
CREATE TABLE "task_stats_dirty" (
	"minute" timestamp with time zone NOT NULL,
	"name" text NOT NULL,
	"queue" text NOT NULL,
	"marked_at" timestamp with time zone NOT NULL,
	CONSTRAINT "task_stats_dirty_pkey" PRIMARY KEY("minute","name","queue")
);
--> statement-breakpoint
CREATE INDEX "task_stats_minute_idx" ON "task_stats" USING btree ("minute");--> statement-breakpoint
CREATE INDEX "tasks_finished_idx" ON "tasks" USING btree ("finished_at");