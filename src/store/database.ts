/**
 * Opens the store: PostgreSQL through postgres.js when DATABASE_URL is set,
 * embedded PGlite under DATA_DIR otherwise. Both speak the same SQL, so the
 * schema, the writes and the queries are the same on both.
 */
import { join } from "node:path";
import { type SQL, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema/index.ts";

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
   * survives its connection dying (see openPostgres, postgres.ts): use it, not
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

/**
 * Each kind's module is loaded only when it is the one opened: a Crisper on
 * PGlite never loads postgres.js, nor one on PostgreSQL the WebAssembly
 * PostgreSQL (README, Benchmarks).
 */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.databaseUrl) {
    const { openPostgres } = await import("./postgres.ts");
    return openPostgres(config.databaseUrl, {
      max: config.maxConnections ?? 10,
      webStatementTimeoutMs: config.webStatementTimeoutMs ?? DEFAULT_WEB_STATEMENT_TIMEOUT_MS,
    });
  }
  if (!config.dataDir) throw new Error("openDatabase: a DATABASE_URL or a data directory is needed");
  const { openPglite } = await import("./pglite.ts");
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

/** Thrown when a transaction's connection closed under it: retry the whole transaction. */
export class ConnectionLostError extends Error {
  readonly code = "CONNECTION_LOST_IN_TRANSACTION";
  constructor(what: string) {
    super(`the database connection closed during a transaction (${what}); nothing of it was committed`);
  }
}

export { sql };
