/**
 * Opens the store: PostgreSQL through postgres.js when DATABASE_URL is set,
 * embedded PGlite under DATA_DIR otherwise. Both speak the same SQL, so the
 * schema, the writes and the queries are the same on both.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { type SQL, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema/index.ts";
// PGlite's Postgres (wasm) and its file system image, as files Bun embeds in
// a compiled binary (`bun build --compile`): PGlite cannot find them next to
// its own module there, so they are read here and handed to it.
import pgliteData from "@electric-sql/pglite/pglite.data" with { type: "file" };
import initdbWasm from "@electric-sql/pglite/initdb.wasm" with { type: "file" };
import pgliteWasm from "@electric-sql/pglite/pglite.wasm" with { type: "file" };

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type RawQuery = (text: string, params: unknown[]) => Promise<unknown>;

export interface Database {
  kind: "postgres" | "pglite";
  db: Db;
  /** Runs SQL and returns its rows, whichever driver is underneath. */
  rows<T = Record<string, unknown>>(query: SQL): Promise<T[]>;
  /**
   * Runs raw SQL (`$1` parameters) in one transaction, straight on the
   * driver: the collector's hot path, where a query builder costs more than
   * the rest of the write.
   */
  transaction(fn: (query: RawQuery) => Promise<void>): Promise<void>;
  /** Throws if the database cannot answer. */
  ping(): Promise<void>;
  /**
   * PostgreSQL's NOTIFY / LISTEN, for telling other Crisper processes that
   * something changed (live pages in a `crisper web` fed by a `crisper
   * collect`). Absent on the embedded database, which one process owns.
   */
  notify?(channel: string, payload: string): Promise<void>;
  listen?(channel: string, onPayload: (payload: string) => void): Promise<{ unlisten(): Promise<void> }>;
  close(): Promise<void>;
}

export type DatabaseConfig = (
  | { databaseUrl: string; dataDir?: string }
  | { databaseUrl?: undefined; dataDir: string }
) & {
  /** postgres.js pool size. */
  maxConnections?: number;
};

export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, config.maxConnections ?? 10);
  return openPglite(join(config.dataDir as string, "pgdata"));
}

function openPostgres(url: string, max: number): Database {
  const client = postgres(url, {
    max,
    onnotice: () => {},
    connection: { application_name: "crisper" },
  });
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
  return {
    kind: "postgres",
    db,
    rows: async <T,>(query: SQL) => (await db.execute(query)) as unknown as T[],
    transaction: async (fn) => {
      await client.begin(async (tx) => {
        await fn((text, params) => tx.unsafe(text, params as postgres.ParameterOrJSON<never>[]));
      });
    },
    ping: async () => {
      await client`select 1`;
    },
    notify: async (channel, payload) => {
      await client.notify(channel, payload);
    },
    // postgres.js keeps a dedicated connection for LISTEN and re-listens after a reconnect.
    listen: async (channel, onPayload) => {
      const l = await client.listen(channel, onPayload);
      return { unlisten: () => l.unlisten() };
    },
    close: () => client.end({ timeout: 5 }),
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  mkdirSync(dataDir, { recursive: true });
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all(
    [pgliteWasm, initdbWasm].map(async (path) => WebAssembly.compile(await Bun.file(path).arrayBuffer())),
  );
  const client = await PGlite.create({ dataDir, pgliteWasmModule, initdbWasmModule, fsBundle: Bun.file(pgliteData) });
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  let closed = false;
  return {
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
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}

export { sql };
