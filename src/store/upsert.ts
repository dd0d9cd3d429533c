/**
 * The SQL of a batched, idempotent upsert, written from a table's drizzle
 * columns and one merge rule per column (store/writes.ts holds the rules).
 *
 * Rows travel as they are, in one JSON parameter: the keys are the schema's
 * property names (`routingKey`), times are unix seconds, and a key the
 * statement does not name is ignored. json_to_recordset unpacks them
 * server-side, the same on PostgreSQL and PGlite, with no parameter limit. The statement text is built once, at startup: the
 * collector's hot path only serializes the rows.
 */
import { type Column, getTableColumns, getTableName, is } from "drizzle-orm";
import { type PgTable, PgTimestamp } from "drizzle-orm/pg-core";

/**
 * How a column's stored value and the incoming one combine on conflict: the
 * SQL after `column =`, given the column's name. In it, `stored` is the row
 * in the table and `excluded` (PostgreSQL's name) the row being written.
 */
export type Merge = (column: string) => string;

type ColumnsOf<T extends PgTable> = T["_"]["columns"];

/**
 * A rule for every column of the table: the primary key is the conflict
 * target ("key"); any other column has a merge, or is "not written" by the
 * upsert (something else sets it). A column added to the schema does not
 * compile until it has its rule here.
 */
export type MergeRules<T extends PgTable> = {
  // A primary key of several columns (declared on the table, not the column): each of its columns is "key".
  [K in keyof ColumnsOf<T>]: ColumnsOf<T>[K]["_"]["isPrimaryKey"] extends true ? "key" : Merge | "not written" | "key";
};

type Written<R> = { [K in keyof R]: R[K] extends "not written" ? never : K }[keyof R];

/** A column's value as a row carries it: times as unix seconds; null where the column allows it. */
type Wire<C extends Column> = (C["_"]["data"] extends Date ? number : C["_"]["data"]) | (C["_"]["notNull"] extends true ? never : null);

/** What one row must carry: every written column, under its schema property name. */
export type UpsertRow<T extends PgTable, R extends MergeRules<T>> = {
  [K in Written<R> & keyof ColumnsOf<T>]: Wire<ColumnsOf<T>[K]>;
};

export type Statement = [text: string, params: unknown[]];

/** The statement that upserts rows into `table`, merging each column by its rule. */
export function upsert<T extends PgTable, R extends MergeRules<T>>(
  table: T,
  rules: R,
  /** Columns of the rows as they are after the upsert, returned (SQL, e.g. `id, name`). */
  returning?: string,
): (rows: readonly UpsertRow<T, R>[]) => Statement {
  const ruleOf = new Map<string, Merge | "key" | "not written">(Object.entries(rules));
  const insert: string[] = [];
  const select: string[] = [];
  const recordset: string[] = [];
  const conflict: string[] = [];
  const set: string[] = [];
  for (const [property, column] of Object.entries(getTableColumns(table))) {
    const rule = ruleOf.get(property);
    if (rule === undefined) throw new Error(`no merge rule for ${getTableName(table)}.${column.name}`);
    if (rule === "not written") continue;
    const field = `"${property}"`;
    // The row carries unix seconds (what the collector computes with); the column is a timestamptz.
    const time = is(column, PgTimestamp);
    insert.push(column.name);
    select.push(time ? `to_timestamp(${field})` : field);
    recordset.push(`${field} ${time ? "float8" : column.getSQLType()}`);
    if (rule === "key") conflict.push(column.name);
    else set.push(`${column.name} = ${rule(column.name)}`);
  }
  const text = `insert into ${getTableName(table)} as stored (${insert.join(", ")})
    select ${select.join(", ")}
    from json_to_recordset($1::text::json) as patch(${recordset.join(", ")})
    on conflict (${conflict.join(", ")}) do update set
      ${set.join(",\n      ")}${returning ? `\n    returning ${returning}` : ""}`;
  return (rows) => [text, [JSON.stringify(rows)]];
}

// The merges the upserts share. greatest() and least() ignore nulls in
// PostgreSQL: exactly the max and min of the merges in src/state.

export const greatest: Merge = (c) => `greatest(stored.${c}, excluded.${c})`;
export const least: Merge = (c) => `least(stored.${c}, excluded.${c})`;

/** The incoming value (null included) when `incomingWins` holds, else the stored one. */
export const incomingIf =
  (incomingWins: string): Merge =>
  (c) =>
    `case when ${incomingWins} then excluded.${c} else stored.${c} end`;

/** The first non-null of the two, looking at the incoming value first when `incomingFirst` holds. */
export const firstNonNull =
  (incomingFirst: string): Merge =>
  (c) =>
    `case when ${incomingFirst} then coalesce(excluded.${c}, stored.${c}) else coalesce(stored.${c}, excluded.${c}) end`;
