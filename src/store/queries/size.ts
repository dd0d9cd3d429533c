/** How much room the store takes: the overview and /metrics show it beside the retention in force. */
import { sql } from "drizzle-orm";
import type { Database } from "../database.ts";

/** The whole database's size on disk, bytes (pg_database_size: every table, index and TOAST). */
export async function databaseBytes(database: Database): Promise<number> {
  const [row] = await database.rows<{ bytes: string | number }>(sql`select pg_database_size(current_database()) as bytes`);
  return Number(row?.bytes ?? 0);
}
