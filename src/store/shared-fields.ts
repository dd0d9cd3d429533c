/**
 * An event's descriptive fields (name, args, kwargs, queue, routing_key,
 * exchange, root_id, parent_id, eta, expires) are what its task's row holds
 * too: a task-sent and a task-received each carry the same args, the row a
 * third copy. An event from the event stream is stored without those fields
 * when its task's row holds exactly the same strings, and a bit per field
 * (events.fields_in_task) says which to put back when it is read.
 *
 * That is exact because such a row value never changes again: a task's
 * descriptive fields are the first non-null from the best source
 * (state/task-patch.ts), the event stream is the best (info_source 2), and
 * a row whose info_source is 2 keeps a non-null value for good.
 */
import { getTableColumns } from "drizzle-orm";
import { DESCRIPTIVE_FIELDS, type DescriptiveField, FIELD_OF } from "../state/task-patch.ts";
import { tasks } from "./schema/index.ts";

export interface SharedField {
  field: DescriptiveField;
  /** The event's field name (Celery's). */
  wire: string;
  /** The tasks column. */
  column: string;
  bit: number;
}

const COLUMNS = getTableColumns(tasks);

export const SHARED_FIELDS: readonly SharedField[] = DESCRIPTIVE_FIELDS.map((field, i) => ({
  field,
  wire: FIELD_OF[field],
  column: COLUMNS[field].name,
  bit: 1 << i,
}));

/**
 * events.fields_in_task's bit for an event learned from the result
 * backend's publish rather than the event stream (state/event-row.ts
 * `source`); the shared fields' bits stay below it.
 */
export const FROM_RESULT_BACKEND = 1 << 14;
if (SHARED_FIELDS.some((s) => s.bit >= FROM_RESULT_BACKEND)) throw new Error("events.fields_in_task: the shared fields' bits reach the source bit");

/** An event's source and its shared-fields bits, from its fields_in_task. */
export function sourceOf(fieldsInTask: number): { source: "events" | "result-backend"; mask: number } {
  return { source: fieldsInTask & FROM_RESULT_BACKEND ? "result-backend" : "events", mask: fieldsInTask & ~FROM_RESULT_BACKEND };
}

/** The info_source of the event stream (state/task-patch.ts): the best, so a value from it is final. */
export const EVENT_STREAM_SOURCE = 2;

/** A task row's descriptive columns as the upsert returns them (writes.ts), keyed by column name. */
export type SharedRow = Record<string, unknown>;

/** SQL: what the task upsert returns for withoutShared: the id, the source, and the descriptive columns. */
export const SHARED_RETURNING = ["id", "info_source", ...SHARED_FIELDS.map((s) => s.column)].join(", ");

/**
 * An event's fields without those its task row holds as the same string,
 * from the event stream, and the bits of those left out (mask 0 and the
 * fields themselves when there are none). `row` is the task's row as the
 * upsert in the same transaction left it: its lock is held to the commit, so
 * those values are the committed ones, and final from then on.
 */
export function withoutShared(fields: Record<string, unknown>, row: SharedRow | undefined): { mask: number; fields: Record<string, unknown> } {
  if (!row || Number(row.info_source) !== EVENT_STREAM_SOURCE) return { mask: 0, fields };
  let mask = 0;
  for (const s of SHARED_FIELDS) {
    const v = fields[s.wire];
    if (typeof v === "string" && row[s.column] === v) mask |= s.bit;
  }
  if (mask === 0) return { mask, fields };
  // Without a prototype, like the decoder's: a field named __proto__ stays a field.
  const rest: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(fields)) rest[k] = v;
  for (const s of SHARED_FIELDS) if (mask & s.bit) delete rest[s.wire];
  return { mask, fields: rest };
}

/** Puts back the fields an event was stored without, from its task's row. */
export function withShared(
  fields: Record<string, unknown>,
  mask: number,
  task: Partial<Record<DescriptiveField, string | null>> | undefined,
): Record<string, unknown> {
  if (mask === 0 || !task) return fields;
  const out = { ...fields };
  for (const s of SHARED_FIELDS) if (mask & s.bit) out[s.wire] = task[s.field] ?? null;
  return out;
}
