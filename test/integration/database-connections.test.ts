/**
 * The store's connections on a real PostgreSQL: transactions that survive
 * their connection dying (nothing half-committed, the next one works), and
 * web queries on connections of their own with a statement timeout.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { type Database, openDatabase, sql } from "../../src/store/database.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";

let server: PostgresServer;
let database: Database;
let url: string;
let admin: postgres.Sql;

beforeAll(async () => {
  server = await startPostgres();
  url = await createDatabase(server.url, "connections");
  database = await openDatabase({ databaseUrl: url, webStatementTimeoutMs: 300 });
  admin = postgres(server.url, { max: 1, onnotice: () => {} });
  await database.rows(sql`create table t (x integer)`);
});

afterAll(async () => {
  await database?.close();
  await admin?.end({ timeout: 1 });
  await server?.stop();
});

const count = async () => Number((await database.rows<{ n: number }>(sql`select count(*)::int as n from t`))[0]?.n);

/** Terminates the backends of Crisper's transaction connections; how many. */
async function terminateWriters(): Promise<number> {
  const rows = await admin`select pg_terminate_backend(pid) from pg_stat_activity
    where datname = 'connections' and application_name = 'crisper-writer'`;
  return rows.length;
}

test("a transaction whose connection is terminated midway commits nothing, and the next one works", async () => {
  await database.rows(sql`truncate t`);
  const attempt = database.transaction(async (query) => {
    await query("insert into t values ($1)", [1]);
    expect(await terminateWriters()).toBeGreaterThan(0);
    // Let the close reach the client; a reconnect must not carry the rest outside the transaction.
    await Bun.sleep(300);
    await query("insert into t values ($1)", [2]);
  });
  await expect(attempt).rejects.toThrow();
  expect(await count()).toBe(0);
  await database.transaction(async (query) => {
    await query("insert into t values ($1)", [3]);
    await query("insert into t values ($1)", [4]);
  });
  expect(await count()).toBe(2);
});

test("a statement the database refuses rolls the transaction back; the connection stays usable", async () => {
  await database.rows(sql`truncate t`);
  const refused = database.transaction(async (query) => {
    await query("insert into t values ($1)", [1]);
    await query("select 1 / $1::int", [0]);
  });
  await expect(refused).rejects.toMatchObject({ code: "22012" });
  expect(await count()).toBe(0);
  for (let i = 0; i < 5; i++) await database.transaction(async (query) => void (await query("insert into t values ($1)", [i])));
  expect(await count()).toBe(5);
});

test("transactions terminated again and again never wedge the client", async () => {
  await database.rows(sql`truncate t`);
  let committed = 0;
  let failed = 0;
  let killing = true;
  const killer = (async () => {
    while (killing) {
      await terminateWriters();
      await Bun.sleep(40 + Math.random() * 60);
    }
  })();
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    await database
      .transaction(async (query) => {
        await query("insert into t values ($1)", [committed]);
        await query("select pg_sleep(0.005)", []);
      })
      .then(
        () => committed++,
        () => failed++,
      );
  }
  killing = false;
  await killer;
  expect(failed).toBeGreaterThan(0);
  // Afterwards it just works, and exactly the committed rows are there.
  await database.transaction(async (query) => void (await query("insert into t values ($1)", [-1])));
  expect(await count()).toBe(committed + 1);
});

test("web queries have connections of their own and a statement timeout; the collector's have none", async () => {
  const web = database.forWeb();
  expect(web).not.toBe(database);
  expect(database.forWeb()).toBe(web);
  await expect(web.rows(sql`select pg_sleep(5)`)).rejects.toMatchObject({ cause: { code: "57014" } });
  const [row] = await database.rows<{ ok: number }>(sql`select 1 as ok from pg_sleep(0.5)`);
  expect(row?.ok).toBe(1);
  await database.transaction(async (query) => void (await query("select pg_sleep($1::float8)", [0.5])));
  const names = await admin<{ application_name: string }[]>`
    select distinct application_name from pg_stat_activity where datname = 'connections' order by 1`;
  expect(names.map((r) => r.application_name)).toEqual(expect.arrayContaining(["crisper", "crisper-web", "crisper-writer"]));
});

test("PGlite: one database in the process, pages share it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crisper-pglite-web-"));
  const embedded = await openDatabase({ dataDir: dir });
  try {
    expect(embedded.forWeb()).toBe(embedded);
  } finally {
    await embedded.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
