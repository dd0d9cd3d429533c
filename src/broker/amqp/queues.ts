/**
 * Celery's queues on RabbitMQ, seen from outside:
 * - depth (ready messages, all priorities: a priority queue's count covers
 *   them all) and consumers come from a passive `queue.declare`, which
 *   changes nothing; for a queue that does not exist RabbitMQ refuses it by
 *   closing the channel (404), so checks run on a throwaway channel;
 * - which queues to check: those the workers and events name (the
 *   collector's known queues), Celery's default `celery`, and, with the
 *   management API, every queue of the vhost;
 * - unacknowledged counts come only from the management API.
 */
import type { Channel, ChannelModel } from "amqplib";
import type { Logger } from "../../log.ts";
import type { BrokerPort, QueueSample } from "../port.ts";
import { isPlumbingQueue } from "../../celery/control.ts";
import { type AmqpConnection, replyCode } from "./connection.ts";
import type { ManagementApi } from "./management.ts";

const MAX_QUEUES_SAMPLED = 1000;
/** Celery's default queue (`task_default_queue`): worth a look before any worker says it exists. */
const DEFAULT_QUEUE = "celery";

export function rabbitQueues(o: {
  connection: AmqpConnection;
  management: ManagementApi | null;
  /** Crisper's own event queue, never a task queue. */
  eventQueue: string;
  log: Logger;
}): Pick<BrokerPort, "sampleQueues"> {
  // Crisper's own queues (events, and their overflow: events.ts) are not Celery's.
  const isTaskQueue = (name: string) => name !== o.eventQueue && name !== `${o.eventQueue}.overflow` && !isPlumbingQueue(name) && !name.startsWith("amq.");

  return {
    async sampleQueues(knownQueues = []) {
      const model = await o.connection.ready();
      const managed = o.management ? await o.management.queues() : null;
      const unackedBy = new Map((managed ?? []).map((q) => [q.name, q.unacked]));
      /** Known queues are reported even when absent (depth 0), as on Redis; discovered ones only if they exist. */
      const reportAbsent = new Set(knownQueues.filter(isTaskQueue));
      const names = new Set<string>();
      for (const n of [...reportAbsent, DEFAULT_QUEUE, ...(managed ?? []).map((q) => q.name)]) {
        if (names.size < MAX_QUEUES_SAMPLED && isTaskQueue(n)) names.add(n);
      }
      const checked = await checkQueues(model, [...names].sort());
      const sampledAt = Date.now() / 1000;
      const out: QueueSample[] = [];
      for (const [name, q] of checked) {
        if (!q && !reportAbsent.has(name)) continue;
        out.push({
          name,
          depth: q?.messages ?? 0,
          byPriority: {},
          consumers: q?.consumers ?? 0,
          unacked: unackedBy.get(name) ?? 0,
          oldestUnackedAgeS: null,
          sampledAt,
        });
      }
      return out;
    },
  };
}

/**
 * Passive declares, one after another on one channel until one is refused
 * (the queue is missing), then on a fresh one. Null for a missing queue.
 */
async function checkQueues(model: ChannelModel, names: string[]): Promise<Map<string, { messages: number; consumers: number } | null>> {
  const out = new Map<string, { messages: number; consumers: number } | null>();
  let ch: Channel | null = null;
  try {
    for (const name of names) {
      if (!ch) {
        ch = await model.createChannel();
        ch.on("error", () => {});
      }
      try {
        const q = await ch.checkQueue(name);
        out.set(name, { messages: q.messageCount, consumers: q.consumerCount });
      } catch (e) {
        if (replyCode(e) !== 404) throw e;
        out.set(name, null);
        // The refusal closed this channel.
        ch = null;
      }
    }
  } finally {
    await ch?.close().catch(() => {});
  }
  return out;
}
