/**
 * Opens the store: PostgreSQL through postgres.js when DATABASE_URL is set,
 * embedded PGlite under DATA_DIR otherwise. Both speak the same SQL, so the
 * schema, the writes and the queries are the same on both.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { type SQL, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema/index.ts";
import { unpackSeed } from "./pglite-seed.ts";
// PGlite's Postgres (wasm) and its file system image, as files Bun embeds in
// a compiled binary (`bun build --compile`): PGlite cannot find them next to
// its own module there, so they are read here and handed to it.
import pgliteData from "@electric-sql/pglite/pglite.data" with { type: "file" };
import pgliteWasm from "@electric-sql/pglite/pglite.wasm" with { type: "file" };

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type RawQuery = (text: string, params: unknown[]) => Promise<unknown>;

/** The rows of a RawQuery's answer: postgres.js answers the rows, PGlite an object holding them. */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) return result.rows as T[];
  return [];
}

export interface Database {
  kind: "postgres" | "pglite";
  db: Db;
  /** Runs SQL and returns its rows, whichever driver is underneath. */
  rows<T = Record<string, unknown>>(query: SQL): Promise<T[]>;
  /**
   * Runs raw SQL (`$1` parameters) in one transaction, straight on the
   * driver: the collector's hot path, where a query builder costs more than
   * the rest of the write. The only way Crisper opens a transaction that
   * survives its connection dying (see openPostgres): use it, not
   * `db.transaction`, for anything that runs while the database may restart.
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
  /**
   * The same store for web pages, the API and Slack's commands. On
   * PostgreSQL: connections of their own, so a slow page cannot take the
   * collector's, and a statement timeout, so a page answers (or fails)
   * within seconds, an outage included. On PGlite (one database in this
   * process): this same object. Opened on first use, closed with this one.
   */
  forWeb(): Database;
  close(): Promise<void>;
}

export type DatabaseConfig = (
  | { databaseUrl: string; dataDir?: string }
  | { databaseUrl?: undefined; dataDir: string }
) & {
  /** postgres.js pool size (the web pool's too). */
  maxConnections?: number;
  /** PostgreSQL: web queries are cancelled after this long (default 5 s). */
  webStatementTimeoutMs?: number;
};

const DEFAULT_WEB_STATEMENT_TIMEOUT_MS = 5000;

export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.databaseUrl) {
    return openPostgres(config.databaseUrl, {
      max: config.maxConnections ?? 10,
      webStatementTimeoutMs: config.webStatementTimeoutMs ?? DEFAULT_WEB_STATEMENT_TIMEOUT_MS,
    });
  }
  if (!config.dataDir) throw new Error("openDatabase: a DATABASE_URL or a data directory is needed");
  return openPglite(join(config.dataDir, "pgdata"));
}

/**
 * How a query failed:
 * - "unreachable": the connection failed or was lost (PostgreSQL stopped,
 *   restarting, failed over, the backend terminated, the network cut), or
 *   the query was cancelled (a statement timeout);
 * - "transient": PostgreSQL answered with an error that passes (out of
 *   resources, a deadlock, a lock not available);
 * - "refused": the data or the statement itself (a value PostgreSQL rejects);
 * - "unknown": anything else (an exception of Crisper's own, say).
 */
export type FailureKind = "unreachable" | "transient" | "refused" | "unknown";

export function failureKind(e: unknown): FailureKind {
  const err = errorWithCode(e);
  if (!err) return "unknown";
  if (typeof err.severity === "string" && /^[0-9A-Z]{5}$/.test(err.code)) return SQLSTATE_CLASSES[err.code.slice(0, 2)] ?? "unknown";
  // postgres.js's own (CONNECTION_CLOSED, CONNECT_TIMEOUT, …), Crisper's
  // (CONNECTION_LOST_IN_TRANSACTION), the socket's (ECONNREFUSED, ECONNRESET, EPIPE, …).
  return /^CONNECT(ION)?_/.test(err.code) || /^E[A-Z]+$/.test(err.code) ? "unreachable" : "unknown";
}

/**
 * Whether an error means the database is away or overwhelmed rather than a
 * bug or bad data: for pages (a 503, not a 500), /readyz, and loops that
 * should say "retrying" instead of logging a stack.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  const kind = failureKind(e);
  return kind === "unreachable" || kind === "transient";
}

/** PostgreSQL's error classes (the SQLSTATE's first two characters) whose kind is known. */
const SQLSTATE_CLASSES: Record<string, FailureKind> = {
  "08": "unreachable", // connection exception
  "57": "unreachable", // operator intervention: shutdown, terminated backend, cannot connect now, query cancelled
  "53": "transient", // insufficient resources (disk full, out of memory, too many connections)
  "58": "transient", // system error (I/O)
  "40": "transient", // transaction rollback: deadlock, serialization
  "55": "transient", // object not in prerequisite state (lock not available)
  "25": "transient", // invalid transaction state
  "21": "refused", // cardinality violation
  "22": "refused", // data exception
  "23": "refused", // integrity constraint violation
  "42": "refused", // syntax error or access rule violation
  "54": "refused", // program limit exceeded (a value too large)
  XX: "refused", // internal error, raised by this data
};

/** PostgreSQL's SQLSTATE of a failed query (e.g. "40P01", a deadlock), wrapped or not; null for any other error. */
export function sqlState(e: unknown): string | null {
  const err = errorWithCode(e);
  return err && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : null;
}

/** The error, or what it wraps (query builders wrap the driver's: drizzle's "Failed query: …" has it as cause), with a string code. */
function errorWithCode(e: unknown): { code: string; severity?: unknown } | null {
  for (let x = e, depth = 0; typeof x === "object" && x !== null && depth < 3; depth++) {
    if ("code" in x && typeof x.code === "string") return { code: x.code, severity: "severity" in x ? x.severity : undefined };
    x = "cause" in x ? x.cause : undefined;
  }
  return null;
}

/**
 * How long one transaction may take before its connection is presumed dead
 * (a failover that leaves the old address silent: no reset ever arrives) and
 * replaced. A collector batch takes well under a second; a retry is harmless.
 */
const TRANSACTION_TIMEOUT_MS = 60_000;

/** Thrown when a transaction's connection closed under it: retry the whole transaction. */
export class ConnectionLostError extends Error {
  readonly code = "CONNECTION_LOST_IN_TRANSACTION";
  constructor(what: string) {
    super(`the database connection closed during a transaction (${what}); nothing of it was committed`);
  }
}

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

interface PostgresOptions {
  max: number;
  webStatementTimeoutMs: number;
}

/**
 * Transactions run at once on one Database: the collector's two batch writes
 * in flight, and one for the rest (queue samples, the detector's writes).
 */
const TRANSACTION_LANES = 3;

function openPostgres(url: string, o: PostgresOptions): Database {
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

/**
 * The embedded database's memory, sized for the small machine a monitor is
 * put on: PostgreSQL's defaults (128 MB of shared buffers, 64 MB for index
 * builds) live inside PGlite's WebAssembly memory, in this process, and are
 * never given back. With these, `crisper serve` idles at about half the RSS
 * (bench/footprint.ts; README, Benchmarks); the files stay in the OS's page
 * cache, so reads past the buffers are still memory reads.
 */
const PGLITE_SETTINGS = ["shared_buffers=16MB", "work_mem=2MB", "maintenance_work_mem=16MB", "temp_buffers=2MB", "wal_buffers=1MB"];

async function openPglite(dataDir: string): Promise<Database> {
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

export { sql };
