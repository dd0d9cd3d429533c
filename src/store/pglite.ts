/**
 * The embedded store: PGlite (PostgreSQL compiled to WebAssembly) in this
 * process, its files under DATA_DIR. Loaded by openDatabase only when there
 * is no DATABASE_URL (database.ts).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import type { Database, Db } from "./database.ts";
import { unpackSeed } from "./pglite-seed.ts";
import * as schema from "./schema/index.ts";
// PGlite's Postgres (wasm) and its file system image, as files Bun embeds in
// a compiled binary (`bun build --compile`): PGlite cannot find them next to
// its own module there, so they are read here and handed to it.
import pgliteData from "@electric-sql/pglite/pglite.data" with { type: "file" };
import pgliteWasm from "@electric-sql/pglite/pglite.wasm" with { type: "file" };

/**
 * The embedded database's memory, sized for the small machine a monitor is
 * put on: PostgreSQL's defaults (128 MB of shared buffers, 64 MB for index
 * builds) live inside PGlite's WebAssembly memory, in this process, and are
 * never given back; PostgreSQL touches all of its shared buffers at start.
 * With these, `crisper serve` idles at about half the RSS
 * (bench/footprint.ts; README, Benchmarks); the files stay in the OS's page
 * cache, so reads past the buffers are still memory reads (4 MB rather than
 * 16 MB: 12 MB less RSS; 200,000 tasks written about 5 % slower).
 */
const PGLITE_SETTINGS = ["shared_buffers=4MB", "work_mem=2MB", "maintenance_work_mem=16MB", "temp_buffers=2MB", "wal_buffers=1MB"];

export async function openPglite(dataDir: string): Promise<Database> {
  mkdirSync(dataDir, { recursive: true });
  const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer());
  // A data directory not yet created is unpacked from the seed initdb made
  // once (pglite-seed.ts): initdb itself would take this process to about
  // 1 GB of memory. Its module is then never needed.
  if (!existsSync(join(dataDir, "PG_VERSION"))) await unpackSeed(dataDir);
  const pgliteWasmModule = await compile(pgliteWasm);
  const client = await PGlite.create({
    dataDir,
    pgliteWasmModule,
    fsBundle: Bun.file(pgliteData),
    startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((s) => ["-c", s])],
  });
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  let closed = false;
  const database: Database = {
    kind: "pglite",
    db,
    rows: async <T,>(query: SQL) => ((await db.execute(query)) as unknown as { rows: T[] }).rows,
    transaction: async (fn) => {
      await client.transaction(async (tx) => {
        await fn((text, params) => tx.query(text, params));
      });
    },
    ping: async () => {
      await client.query("select 1");
    },
    // One database in this process: pages and the collector share it.
    forWeb: () => database,
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
  return database;
}
