/**
 * The store on PostgreSQL (DATABASE_URL), through postgres.js: connections
 * that survive PostgreSQL's restarts and failovers, and transactions run by
 * hand on them. Loaded by openDatabase only when it is needed (database.ts).
 */
import type { SQL } from "drizzle-orm";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { ConnectionLostError, type Database, type Db, type RawQuery } from "./database.ts";
import * as schema from "./schema/index.ts";

/**
 * How long one transaction may take before its connection is presumed dead
 * (a failover that leaves the old address silent: no reset ever arrives) and
 * replaced. A collector batch takes well under a second; a retry is harmless.
 */
const TRANSACTION_TIMEOUT_MS = 60_000;


/**
 * A postgres.js client that is replaced, never reused, once one of its
 * connections closes under it (PostgreSQL stopped or failed over, a backend
 * terminated, the network cut).
 *
 * postgres.js 3.4.9 does not come back cleanly from a connection that closes
 * while a write is pending (a query issued between the socket's error and its
 * close, which is what a caller's retry or ROLLBACK does):
 * - the pending write is cancelled but stays marked as pending, so every
 *   later connection of that slot stalls before its first byte (each
 *   reconnect ends in CONNECT_TIMEOUT), and a query left in its queue never
 *   settles;
 * - inside `begin()` its own ROLLBACK is written after the socket is gone and
 *   throws from a timer, outside any promise (`TypeError: null is not an
 *   object (evaluating 'socket.write')` in connection.js nextWrite): the
 *   process exits. Upstream: porsager/postgres#1066, #1208, #1142.
 * A fresh client has fresh connection state. The old one is ended, and after
 * a grace period destroyed, which rejects whatever still waits on it.
 *
 * Connections are not recycled on a timer (max_lifetime off), so every close
 * is one of these.
 */
class RenewingClient {
  private client: postgres.Sql;
  private closing = false;

  constructor(private readonly open: (onclose: () => void) => postgres.Sql) {
    this.client = this.start();
  }

  get current(): postgres.Sql {
    return this.client;
  }

  private start(): postgres.Sql {
    const client: postgres.Sql = this.open(() => this.renew(client));
    return client;
  }

  /** Replaces `failed` if it is still the current client. */
  renew(failed: postgres.Sql): void {
    if (this.closing || failed !== this.client) return;
    this.client = this.start();
    void failed.end({ timeout: 5 }).catch(() => {});
  }

  end(): Promise<void> {
    this.closing = true;
    return this.client.end({ timeout: 5 });
  }
}

/**
 * One PostgreSQL connection that runs one transaction at a time: BEGIN, the
 * statements and COMMIT as plain queries on a one-connection client (which
 * postgres.js allows), never `begin()` (see RenewingClient). The danger of
 * plain queries is the opposite one: after a reconnect, the rest would run
 * outside the transaction. The client is renewed on any close, so a
 * transaction whose client changed before its COMMIT answered is a failure,
 * retried whole by the caller (Crisper's writes are idempotent).
 */
class TransactionLane {
  busy = false;

  constructor(private readonly connection: RenewingClient) {}

  async run(fn: (query: RawQuery) => Promise<void>): Promise<void> {
    const client = this.connection.current;
    const alive = (what: string) => {
      if (this.connection.current !== client) throw new ConnectionLostError(what);
    };
    // No answer for this long: drop the connection, which rejects what waits on it.
    const watchdog = setTimeout(() => this.connection.renew(client), TRANSACTION_TIMEOUT_MS);
    try {
      await client.unsafe("begin");
      await fn(async (text, params) => {
        alive("before a statement");
        const result = await client.unsafe(text, params as postgres.ParameterOrJSON<never>[]);
        alive("after a statement");
        return result;
      });
      alive("before commit");
      await client.unsafe("commit");
      // A COMMIT that ran on a new connection (outside any transaction) only
      // warns: whether the client is still the same says if it was ours.
      alive("commit");
    } catch (e) {
      // Ends the failed transaction on a live connection; on a renewed client
      // it is refused at once. Not awaited: on a connection that is closing it
      // may wait for the old client's grace period, and this connection runs
      // it before any next BEGIN anyway.
      client.unsafe("rollback").catch(() => {});
      throw e;
    } finally {
      clearTimeout(watchdog);
    }
  }

  end(): Promise<void> {
    return this.connection.end();
  }
}

export interface PostgresOptions {
  max: number;
  webStatementTimeoutMs: number;
}

/**
 * Transactions run at once on one Database: the collector's two batch writes
 * in flight, and one for the rest (queue samples, the detector's writes).
 */
const TRANSACTION_LANES = 3;

export function openPostgres(url: string, o: PostgresOptions): Database {
  const options = (applicationName: string, extra: postgres.Options<Record<string, never>>, onclose?: () => void) =>
    postgres(url, {
      onnotice: () => {},
      // Every close renews the client (RenewingClient): none on a timer.
      max_lifetime: null,
      // A fresh client starts with no failures counted; should one count
      // them, reconnect within a second rather than postgres.js's up to 20 s.
      backoff: (failures: number) => Math.min(0.05 * 2 ** failures, 1),
      // On each new connection postgres.js would first look up array types,
      // from a promise nobody awaits: a connection terminated during that
      // lookup rejects it unhandled. Crisper passes lists as JSON, never as
      // arrays, and reads no array columns.
      fetch_types: false,
      ...extra,
      ...(onclose ? { onclose } : {}),
      connection: { application_name: applicationName, ...extra.connection },
    });

  const lanes: TransactionLane[] = [];
  const waiting: ((lane: TransactionLane) => void)[] = [];
  /** A lane for one transaction, marked busy before anyone else can take it. */
  const lane = (): Promise<TransactionLane> => {
    let free = lanes.find((l) => !l.busy);
    if (!free && lanes.length < TRANSACTION_LANES) {
      free = new TransactionLane(
        new RenewingClient((onclose) =>
          options(
            "crisper-writer",
            // A client gone in the middle of a transaction must not hold row locks for long.
            { max: 1, connection: { idle_in_transaction_session_timeout: TRANSACTION_TIMEOUT_MS } },
            onclose,
          ),
        ),
      );
      lanes.push(free);
    }
    if (!free) return new Promise((resolve) => waiting.push(resolve));
    free.busy = true;
    return Promise.resolve(free);
  };
  const transaction: Database["transaction"] = async (fn) => {
    const l = await lane();
    try {
      await l.run(fn);
    } finally {
      const next = waiting.shift();
      if (next) next(l);
      else l.busy = false;
    }
  };

  // LISTEN has a client of its own: postgres.js re-listens after a reconnect,
  // and renewing a client would end its listener.
  let listener: postgres.Sql | null = null;
  const pool = new RenewingClient((onclose) => options("crisper", { max: o.max }, onclose));
  let web: Database | null = null;
  // Not spread into a new object: `db` is a getter (see poolDatabase).
  const database = poolDatabase(pool, transaction);
  database.listen = async (channel, onPayload) => {
    listener ??= options("crisper-listen", { max: 1 });
    const l = await listener.listen(channel, onPayload);
    return { unlisten: () => l.unlisten() };
  };
  database.forWeb = () => {
    web ??= poolDatabase(
      new RenewingClient((onclose) =>
        options(
          "crisper-web",
          {
            max: o.max,
            // Fail fast when PostgreSQL is away, rather than hold a page for 30 s.
            connect_timeout: 3,
            connection: { statement_timeout: o.webStatementTimeoutMs },
          },
          onclose,
        ),
      ),
      transaction,
    );
    return web;
  };
  database.close = async () => {
    await Promise.all([pool.end(), web?.close(), listener?.end({ timeout: 5 }), ...lanes.map((l) => l.end())]);
  };
  return database;
}

/** A Database over a renewing postgres.js pool; transactions run on `transaction` (see TransactionLane). */
function poolDatabase(pool: RenewingClient, transaction: Database["transaction"]): Database {
  const drizzles = new WeakMap<postgres.Sql, Db>();
  const db = () => {
    const client = pool.current;
    let d = drizzles.get(client);
    if (!d) {
      d = drizzlePostgres(client, { schema }) as unknown as Db;
      drizzles.set(client, d);
    }
    return d;
  };
  const self: Database = {
    kind: "postgres",
    // A getter: the client underneath is renewed after a connection is lost.
    get db() {
      return db();
    },
    rows: async <T,>(query: SQL) => (await db().execute(query)) as unknown as T[],
    transaction,
    ping: async () => {
      await pool.current`select 1`;
    },
    notify: async (channel, payload) => {
      await pool.current.notify(channel, payload);
    },
    forWeb: () => self,
    close: () => pool.end(),
  };
  return self;
}
