/**
 * The store on embedded PGlite: migrations apply, a replay of the real capture
 * lands as the pure merge says, and storing it again (or shuffled, or event by
 * event) changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";
import { emptyStore, type TestStore } from "../support/store.ts";
import { storeContract } from "./store-contract.ts";

let store: TestStore;
let dir: string;
let database: Database;

beforeAll(async () => {
  store = await emptyStore("pglite");
  ({ dir, database } = store);
});

afterAll(async () => {
  // The test below reopens the store: close that one too.
  await database?.close();
  await store?.remove();
});

describe("PGlite store", () => {
  storeContract(() => database);

  test("reopening the data directory keeps the history and migrates nothing twice", async () => {
    await database.close();
    database = await openDatabase({ dataDir: dir });
    expect((await migrate(database)).applied).toEqual([]);
    const rows = await database.rows<{ n: number }>(sql`select count(*)::int as n from tasks`);
    expect(Number(rows[0]?.n)).toBeGreaterThan(5);
  });
});
