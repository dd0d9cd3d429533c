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

/** The info_source of the event stream (state/task-patch.ts): the best, so a value from it is final. */
export const EVENT_STREAM_SOURCE = 2;

/**
 * An event's fields without the descriptive ones that are strings (those a
 * task row can hold), and the bits of those left out; mask 0 and null when
 * there are none.
 */
export function withoutShared(fields: Record<string, unknown>): { mask: number; rest: Record<string, unknown> | null } {
  let mask = 0;
  for (const s of SHARED_FIELDS) if (typeof fields[s.wire] === "string") mask |= s.bit;
  if (mask === 0) return { mask, rest: null };
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) rest[k] = v;
  for (const s of SHARED_FIELDS) if (mask & s.bit) delete rest[s.wire];
  return { mask, rest };
}

/**
 * SQL: whether the task row `t` holds, from the event stream, every field of
 * `mask` exactly as the event `fields` (json) has it.
 */
export function sharedCondition(t: string, fields: string, mask: string): string {
  return [
    `${t}.info_source = ${EVENT_STREAM_SOURCE}`,
    ...SHARED_FIELDS.map((s) => `(${mask} & ${s.bit} = 0 or ${t}.${s.column} = ${fields}->>'${s.wire}')`),
  ].join(" and ");
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
