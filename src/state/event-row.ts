/**
 * How an event is kept: every task event is stored as it came, under a key
 * derived from its content, so storing it twice (a replay, two collectors,
 * the same result published twice) adds nothing.
 */
import type { CeleryEvent } from "../celery/event.ts";

export interface EventRow {
  taskId: string;
  /** 64-bit content hash, as a signed bigint's decimal string. */
  key: string;
  type: string;
  hostname: string;
  timestamp: number;
  localReceived: number;
  source: CeleryEvent["source"];
  fields: Record<string, unknown>;
}

/** A field as part of the key: Celery's clock and pid are numbers; anything else (an object without a prototype has no toString) counts as absent. */
function keyPart(v: unknown): string | number {
  return typeof v === "number" || typeof v === "string" ? v : "";
}

export function eventKey(e: CeleryEvent): string {
  // clock and pid tell apart two events a worker sent in the same microsecond.
  const identity = [e.source, e.uuid ?? "", e.type, e.hostname, e.timestamp, keyPart(e.fields.clock), keyPart(e.fields.pid)].join("\u0001");
  return BigInt.asIntN(64, BigInt(Bun.hash.wyhash(identity))).toString();
}

export function eventRow(e: CeleryEvent): EventRow | null {
  if (!e.uuid) return null;
  return {
    taskId: e.uuid,
    key: eventKey(e),
    type: e.type,
    hostname: e.hostname,
    timestamp: e.timestamp,
    localReceived: e.localReceived,
    source: e.source,
    fields: e.fields,
  };
}
