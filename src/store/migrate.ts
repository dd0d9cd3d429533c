/**
 * Applies the migrations in drizzle/ (embedded at build time, see
 * scripts/embed-migrations.ts). Keeps drizzle's own bookkeeping table, so
 * `drizzle-kit` sees the same history. Several collectors may start at once:
 * an advisory lock makes one of them migrate while the others wait.
 */
import { createHash } from "node:crypto";
import { migrations } from "../../drizzle/migrations.ts";
import { type Database, sql } from "./database.ts";

const LOCK_ID = 0x43524953; // "CRIS"

export async function migrate(database: Database): Promise<{ applied: string[] }> {
  const applied: string[] = [];
  await database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_ID})`);
    await tx.execute(sql`create schema if not exists drizzle`);
    await tx.execute(
      sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
    );
    const done = await tx.execute(sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`);
    const rows = Array.isArray(done) ? done : (done as unknown as { rows: { created_at: unknown }[] }).rows;
    const last = rows[0] ? Number((rows[0] as { created_at: unknown }).created_at) : -1;
    for (const m of migrations) {
      if (m.when <= last) continue;
      for (const statement of m.sql.split("--> statement-breakpoint")) {
        if (statement.trim()) await tx.execute(sql.raw(statement));
      }
      const hash = createHash("sha256").update(m.sql).digest("hex");
      await tx.execute(sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${hash}, ${m.when})`);
      applied.push(m.tag);
    }
  });
  return { applied };
}
