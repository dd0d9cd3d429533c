/**
 * The same store contract on a real PostgreSQL server (postgres.js), plus
 * what only a server has: two collectors writing the same events at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { storeContract } from "./store-contract.ts";

let server: PostgresServer;
let database: Database;

beforeAll(async () => {
  server = await startPostgres();
  database = await openDatabase({ databaseUrl: server.url });
  await migrate(database);
});

afterAll(async () => {
  await database?.close();
  await server?.stop();
});

describe("PostgreSQL store", () => {
  storeContract(() => database);

  test("two processes migrating at once apply each migration once", async () => {
    const url = await createDatabase(server.url, "race");
    const a = await openDatabase({ databaseUrl: url });
    const b = await openDatabase({ databaseUrl: url });
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    expect(ra.applied.length === 0 || rb.applied.length === 0).toBe(true);
    expect(ra.applied.length + rb.applied.length).toBeGreaterThan(0);
    await a.close();
    await b.close();
  });

  test("two collectors writing the same events concurrently store them once", async () => {
    const url = await createDatabase(server.url, "twins");
    const a = await openDatabase({ databaseUrl: url });
    const b = await openDatabase({ databaseUrl: url });
    await migrate(a);
    const events = captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")).flatMap((m) => decodeRawMessage(m).events);
    await Promise.all([
      (async () => {
        for (let i = 0; i < events.length; i += 10) await writeBatch(a, buildBatch(events.slice(i, i + 10)));
      })(),
      (async () => {
        for (let i = events.length; i > 0; i -= 13) await writeBatch(b, buildBatch(events.slice(Math.max(0, i - 13), i)));
      })(),
    ]);
    const stored = await a.rows<{ n: number }>(sql`select count(*)::int as n from events`);
    expect(Number(stored[0]?.n)).toBeGreaterThan(0);
    // Every distinct event once: the same count a single writer gets for this capture.
    const again = await openDatabase({ databaseUrl: await createDatabase(server.url, "single") });
    await migrate(again);
    await writeBatch(again, buildBatch(events));
    const one = await again.rows<{ n: number }>(sql`select count(*)::int as n from events`);
    expect(Number(stored[0]?.n)).toBe(Number(one[0]?.n));
    await Promise.all([a.close(), b.close(), again.close()]);
  });
});
