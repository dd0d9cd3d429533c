/**
 * Delivered-but-unacknowledged messages on RabbitMQ, from the workers' side.
 *
 * AMQP 0-9-1 shows a delivery only to the consumer holding it, and the
 * management API counts them without naming them. But RabbitMQ requeues
 * every delivery of a consumer whose connection closes, so what is
 * unacknowledged is exactly what the live workers hold and have not
 * acknowledged, which they tell through remote control: `reserved`
 * (prefetched, never acknowledged) and `active` (running; acknowledged at
 * start unless `acks_late`, as each entry's `acknowledged` says). A worker
 * too busy to answer in time is missing from the list.
 */
import type { BrokerPort, UnackedMessage } from "../port.ts";

/** How long to wait for the workers' replies. */
const REPLY_TIMEOUT_MS = 1000;
/** Replies are reused this long: detection asks every pass, and each ask costs every worker two replies. */
const CACHE_MS = 2000;
const MAX_LISTED = 50_000;

export function workersUnacked(call: BrokerPort["call"]): Pick<BrokerPort, "unacked"> {
  let cached: { at: number; list: Promise<UnackedMessage[]> } | null = null;

  async function ask(): Promise<UnackedMessage[]> {
    const [reserved, active] = await Promise.all([
      call("reserved", {}, { timeoutMs: REPLY_TIMEOUT_MS }),
      call("active", {}, { timeoutMs: REPLY_TIMEOUT_MS }),
    ]);
    const out: UnackedMessage[] = [];
    for (const [worker, list] of Object.entries(reserved)) collect(out, worker, list, "reserved");
    for (const [worker, list] of Object.entries(active)) collect(out, worker, list, "active");
    return out;
  }

  return {
    unacked() {
      const now = Date.now();
      if (!cached || now - cached.at > CACHE_MS) {
        const list = ask();
        cached = { at: now, list };
        // A failed ask is not kept: the next caller asks again.
        list.catch(() => {
          if (cached?.list === list) cached = null;
        });
      }
      return cached.list;
    },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const text = (v: unknown) => (typeof v === "string" ? v.slice(0, 255) : null);

/** One worker's `reserved` or `active` reply (Celery's Request.info()), its unacknowledged entries added to `out`. */
function collect(out: UnackedMessage[], worker: string, list: unknown, kind: "reserved" | "active") {
  if (!Array.isArray(list)) return;
  for (const entry of list) {
    if (out.length >= MAX_LISTED) return;
    if (!isRecord(entry)) continue;
    // Running and acknowledged at its start (Celery's default, early ack): nothing is held in the broker.
    if (kind === "active" && entry.acknowledged !== false) continue;
    const info = isRecord(entry.delivery_info) ? entry.delivery_info : {};
    const id = text(entry.id);
    // `time_start` (wall clock) is when it began running: a late-acked task's
    // delivery came no later, so its age is at least this. A reserved entry
    // has not started, and nothing says when it was delivered.
    const started = typeof entry.time_start === "number" && Number.isFinite(entry.time_start) ? entry.time_start : null;
    out.push({
      deliveryTag: `${worker.slice(0, 255)}/${id ?? "?"}`,
      taskId: id,
      taskName: text(entry.name) ?? text(entry.type),
      // Celery routes through the default exchange by default, where the routing key is the queue.
      queue: text(info.routing_key),
      deliveredAt: kind === "active" ? started : null,
      redelivered: info.redelivered === true,
    });
  }
}
