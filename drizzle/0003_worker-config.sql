CREATE TABLE "worker_configs" (
	"hostname" text PRIMARY KEY NOT NULL,
	"read_at" timestamp with time zone NOT NULL,
	"worker_online_at" timestamp with time zone,
	"config" jsonb NOT NULL,
	"findings" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"findings_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "worker_memory_samples" (
	"hostname" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"maxrss_kb" bigint NOT NULL,
	CONSTRAINT "worker_memory_samples_hostname_at_pk" PRIMARY KEY("hostname","at")
);
--> statement-breakpoint
CREATE INDEX "worker_memory_samples_at_idx" ON "worker_memory_samples" USING btree ("at");