/**
 * Applies the migrations in drizzle/ (embedded at build time, see
 * scripts/embed-migrations.ts). Keeps drizzle's own bookkeeping table, so
 * `drizzle-kit` sees the same history. Several collectors may start at once:
 * an advisory lock makes one of them migrate while the others wait.
 */
import { createHash } from "node:crypto";
import { migrations } from "../../drizzle/migrations.ts";
import { type Database, rowsOf } from "./database.ts";

const LOCK_ID = 0x43524953; // "CRIS"

export async function migrate(database: Database): Promise<{ applied: string[] }> {
  const applied: string[] = [];
  // database.transaction, not drizzle's: a PostgreSQL that restarts while a
  // process starts must fail this (retried by the caller), not crash it.
  await database.transaction(async (query) => {
    applied.length = 0;
    await query(`select pg_advisory_xact_lock(${LOCK_ID})`, []);
    await query("create schema if not exists drizzle", []);
    await query("create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)", []);
    const done = await query("select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1", []);
    const first = rowsOf<{ created_at: unknown }>(done)[0];
    const last = first ? Number(first.created_at) : -1;
    for (const m of migrations) {
      if (m.when <= last) continue;
      for (const statement of m.sql.split("--> statement-breakpoint")) {
        if (statement.trim()) await query(statement, []);
      }
      const hash = createHash("sha256").update(m.sql).digest("hex");
      await query("insert into drizzle.__drizzle_migrations (hash, created_at) values ($1, $2)", [hash, m.when]);
      applied.push(m.tag);
    }
  });
  return { applied };
}
