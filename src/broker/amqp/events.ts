/**
 * Celery's event stream on RabbitMQ, read from a queue of Crisper's own.
 *
 * Workers publish events to the `celeryev` topic exchange (routing keys
 * `task.multi`, `worker.heartbeat`, …; celery-wire.md, "RabbitMQ"). Celery's
 * own monitors read them through an auto-delete queue that expires 60 s
 * after they go away, so what is published while they restart is lost.
 * Crisper declares a durable named queue instead (EVENT_QUEUE), bound with
 * `#`: events published while Crisper restarts or is down wait there, up to
 * `x-max-length-bytes` (the oldest go first past it, so the broker is
 * protected) and for `x-expires` without a consumer. Several collectors on
 * one queue share its messages; one that dies leaves its unacknowledged
 * deliveries to the others.
 *
 * A delivery is acknowledged once the collector settles it (its batch is
 * committed), in delivery order, many at a time (`multiple`).
 */
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { errorText, type Logger } from "../../log.ts";
import type { BrokerPort, RawMessage, StreamStatus } from "../port.ts";
import { subscribeResults, type PatternSubscription } from "../redis/subscription.ts";
import { EVENT_EXCHANGE } from "../../celery/control.ts";
import { type AmqpConnection, replyCode } from "./connection.ts";

/** How long subscribe() waits for the broker before returning and retrying in the background. */
const SUBSCRIBE_WAIT_MS = 3000;

/** Much faster than Buffer#toString for ASCII (measured); invalid UTF-8 becomes U+FFFD. */
const TEXT = new TextDecoder();
const EMPTY = Buffer.alloc(0);

export interface EventQueueSettings {
  /** EVENT_QUEUE. */
  name: string;
  /** EVENT_QUEUE_EXPIRES_S, as RabbitMQ's `x-expires` (ms). */
  expiresMs: number;
  /** EVENT_QUEUE_MAX_BYTES, as `x-max-length-bytes`. */
  maxBytes: number;
  /**
   * Deliveries RabbitMQ hands over before the first is acknowledged: what
   * bounds the collector's unacknowledged messages (and its buffer's share
   * of them) while the database is slow.
   */
  prefetch: number;
}

/**
 * Where the event queue's dropped heads go: past `x-max-length-bytes`,
 * RabbitMQ dead-letters the oldest messages (drop-head) through the default
 * exchange to this small queue, and whatever arrives there is a gap.
 */
export function overflowQueueName(q: Pick<EventQueueSettings, "name">): string {
  return `${q.name}.overflow`;
}

/**
 * The overflow queue keeps this many dropped events at most (its own oldest
 * go, unrecorded, past it): enough to date the gap, never a second copy of a
 * full event queue.
 */
const OVERFLOW_MAX_LENGTH = 10_000;

/** The arguments Crisper's event queue is declared with (they must match at every declare). */
export function eventQueueArguments(q: EventQueueSettings): Record<string, unknown> {
  return {
    "x-expires": q.expiresMs,
    "x-max-length-bytes": q.maxBytes,
    "x-overflow": "drop-head",
    // Dropped heads are dead-lettered to the overflow queue (default exchange: routed by queue name).
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": overflowQueueName(q),
  };
}

function overflowQueueArguments(q: EventQueueSettings): Record<string, unknown> {
  return { "x-expires": q.expiresMs, "x-max-length": OVERFLOW_MAX_LENGTH, "x-overflow": "drop-head" };
}

/** How much of a dropped message is read for its times and task ids. */
const DROPPED_READ_CHARS = 65_536;
/** Task ids kept per overflow report, for reconciliation. */
const MAX_DROPPED_IDS = 5000;

/**
 * What a dropped message says without decoding it whole (it may be a
 * `task.multi` list of events): when its events were sent (Celery's
 * `timestamp` fields) and which tasks they were about (`uuid`).
 */
export function droppedEvents(body: string): { from: number | null; to: number | null; taskIds: string[] } {
  const text = body.slice(0, DROPPED_READ_CHARS);
  let from: number | null = null;
  let to: number | null = null;
  for (const m of text.matchAll(/"timestamp"\s*:\s*(\d+(?:\.\d+)?)/g)) {
    const t = Number(m[1]);
    if (!Number.isFinite(t) || t < 1e9) continue;
    from = from === null ? t : Math.min(from, t);
    to = to === null ? t : Math.max(to, t);
  }
  const taskIds = [...new Set([...text.matchAll(/"uuid"\s*:\s*"([A-Za-z0-9._:-]{1,255})"/g)].map((m) => m[1] as string))];
  return { from, to, taskIds };
}

export interface AmqpStreams extends Pick<BrokerPort, "subscribe" | "keptEventsWhileAway"> {
  /**
   * Ends every subscription and closes the connection: deliveries not
   * acknowledged by then go back to the queue. The drops that follow are
   * ours, not outages.
   */
  close(): Promise<void>;
}

export function amqpStreams(o: { connection: AmqpConnection; queue: EventQueueSettings; resultBackendUrl?: string; log: Logger }): AmqpStreams {
  const { log } = o;
  const live = new Set<{ close(): Promise<void> }>();
  /** Whether the event queue existed when this process first declared it; null until then. */
  let existed: boolean | null = null;

  return {
    keptEventsWhileAway: () => existed === true,
    async subscribe(onMessage, onStatus) {
      const events = consumeEvents(o.connection, o.queue, onMessage, onStatus, log, (e) => {
        existed ??= e;
      });
      const results: PatternSubscription | null = o.resultBackendUrl ? subscribeResults(o.resultBackendUrl, onMessage, log) : null;
      const sub = {
        async close() {
          live.delete(sub);
          await Promise.all([events.close(), results?.close()]);
        },
      };
      live.add(sub);
      await Promise.all([events.subscribed, results?.subscribed].map((p) => Promise.race([p, Bun.sleep(SUBSCRIBE_WAIT_MS)])));
      return sub;
    },

    async close() {
      const subs = [...live];
      live.clear();
      await Promise.all(subs.map((s) => s.close()));
      await o.connection.close();
    },
  };
}

/**
 * Acknowledges deliveries in the order they came, once each is settled:
 * one `basic.ack` with `multiple` covers every delivery up to the last of an
 * unbroken run of settled ones. Acks are sent once per turn of the event
 * loop, however many deliveries a committed batch settles.
 */
export class InOrderAcks {
  /** Delivered and not yet acknowledged, oldest first (from `head`). */
  private pending: ConsumeMessage[] = [];
  private head = 0;
  private settled = new Set<number>();
  private scheduled = false;

  constructor(private readonly ack: (upTo: ConsumeMessage) => void) {}

  delivered(m: ConsumeMessage): void {
    this.pending.push(m);
  }

  settle(deliveryTag: number): void {
    this.settled.add(deliveryTag);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Unacknowledged deliveries. */
  get outstanding(): number {
    return this.pending.length - this.head;
  }

  private flush() {
    this.scheduled = false;
    let last: ConsumeMessage | null = null;
    for (let m = this.pending[this.head]; m !== undefined; m = this.pending[this.head]) {
      if (!this.settled.delete(m.fields.deliveryTag)) break;
      last = m;
      this.head++;
    }
    if (this.head > 4096 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    if (last) this.ack(last);
  }
}

interface EventConsumer {
  /** Settles once consuming (it may wait out an outage). */
  subscribed: Promise<void>;
  close(): Promise<void>;
}

function consumeEvents(
  connection: AmqpConnection,
  queue: EventQueueSettings,
  onMessage: (m: RawMessage) => void,
  onStatus: (s: StreamStatus) => void,
  log: Logger,
  onDeclared: (existed: boolean) => void,
): EventConsumer {
  let closed = false;
  let connected = false;
  let channel: Channel | null = null;
  let consumerTag: string | null = null;
  let markSubscribed: () => void = () => {};
  const subscribed = new Promise<void>((resolve) => {
    markSubscribed = resolve;
  });

  /**
   * Whether the event queue is there already (events waited in it while no
   * Crisper consumed), asked on a channel of its own: a passive declare of a
   * missing queue closes its channel.
   */
  async function exists(model: ChannelModel): Promise<boolean> {
    const probe = await model.createChannel();
    probe.on("error", () => {});
    try {
      await probe.checkQueue(queue.name);
      await probe.close().catch(() => {});
      return true;
    } catch (e) {
      if (replyCode(e) === 404) return false;
      throw e;
    }
  }

  /** Declares the queue as configured; one declared otherwise (e.g. another max size) is used as it is. */
  async function declare(model: ChannelModel, ch: Channel): Promise<Channel> {
    await ch.assertExchange(EVENT_EXCHANGE, "topic", { durable: true, autoDelete: false });
    // The overflow queue first, so that nothing dead-lettered has nowhere to go.
    await ch.assertQueue(overflowQueueName(queue), { durable: true, arguments: overflowQueueArguments(queue) });
    onDeclared(await exists(model));
    try {
      await ch.assertQueue(queue.name, { durable: true, arguments: eventQueueArguments(queue) });
      return ch;
    } catch (e) {
      if (replyCode(e) !== 406) throw e;
      log.once(
        `event-queue-args:${queue.name}`,
        `event queue ${queue.name} exists with other arguments than Crisper declares (${errorText(e)}): it was declared by an older ` +
          `Crisper (without the dead-letter to ${overflowQueueName(queue)} that records an overflow as an event_gap) or with other ` +
          `EVENT_QUEUE_EXPIRES_S/EVENT_QUEUE_MAX_BYTES. Using it as it is: an overflow of it goes unrecorded. To apply the settings, ` +
          `stop Crisper and delete the queue (rabbitmqctl delete_queue ${queue.name}), or name another EVENT_QUEUE`,
      );
      // The refusal closed the channel: open another, and only check the queue.
      const again = await model.createChannel();
      again.on("error", () => {});
      await again.checkQueue(queue.name);
      return again;
    }
  }

  /** Dropped events seen on the overflow queue, not yet reported. */
  let dropped: { n: number; from: number; to: number; taskIds: Set<string> } | null = null;
  let reportTimer: ReturnType<typeof setTimeout> | null = null;
  function report() {
    reportTimer = null;
    if (!dropped) return;
    const d = dropped;
    dropped = null;
    onStatus({
      state: "overflowed",
      at: Date.now() / 1000,
      from: d.from,
      to: d.to,
      dropped: d.n,
      taskIds: [...d.taskIds],
      reason: `event queue ${queue.name} overflowed (EVENT_QUEUE_MAX_BYTES): RabbitMQ dropped its oldest events`,
    });
  }

  /**
   * What RabbitMQ dead-letters from the event queue's head arrives on the
   * overflow queue: counted and dated (by each event's own timestamp), then
   * reported as one overflow a second later, however many came.
   */
  async function consumeOverflow(ch: Channel) {
    await ch.consume(
      overflowQueueName(queue),
      (m) => {
        if (!m) return;
        const now = Date.now() / 1000;
        const seen = droppedEvents(TEXT.decode(m.content.subarray(0, DROPPED_READ_CHARS)));
        const d = (dropped ??= { n: 0, from: seen.from ?? now, to: seen.to ?? now, taskIds: new Set() });
        d.n++;
        d.from = Math.min(d.from, seen.from ?? now);
        d.to = Math.max(d.to, seen.to ?? now);
        for (const id of seen.taskIds) if (d.taskIds.size < MAX_DROPPED_IDS) d.taskIds.add(id);
        reportTimer ??= setTimeout(report, 1000);
      },
      { noAck: true },
    );
  }

  connection.watch(
    async (model) => {
      if (closed) return;
      let ch = await model.createChannel();
      ch.on("error", () => {});
      ch = await declare(model, ch);
      await ch.bindQueue(queue.name, EVENT_EXCHANGE, "#");
      await consumeOverflow(ch);
      await ch.prefetch(queue.prefetch);
      const acks = new InOrderAcks((upTo) => {
        // After a drop the channel is gone and RabbitMQ has requeued these: nothing to do.
        if (channel === ch) ch.ack(upTo, true);
      });
      const consumed = await ch.consume(
        queue.name,
        (m) => {
          if (!m) {
            // The broker cancelled us (the queue was deleted): start over.
            if (!closed) void model.close().catch(() => {});
            return;
          }
          acks.delivered(m);
          const data = TEXT.decode(m.content);
          // The string is what the collector keeps; the ack needs only the tag.
          m.content = EMPTY;
          const tag = m.fields.deliveryTag;
          onMessage({
            stream: "events",
            channel: m.fields.routingKey,
            data,
            contentType: typeof m.properties.contentType === "string" ? m.properties.contentType : "",
            receivedAt: Date.now() / 1000,
            settle: () => acks.settle(tag),
          });
        },
        { noAck: false },
      );
      channel = ch;
      consumerTag = consumed.consumerTag;
      ch.on("close", () => {
        if (channel !== ch) return;
        channel = null;
        // A channel closed alone (e.g. by the broker) without its connection: reconnect whole.
        if (!closed) void model.close().catch(() => {});
      });
      if (!connected) {
        connected = true;
        onStatus({ state: "connected", at: Date.now() / 1000 });
      }
      markSubscribed();
    },
    (reason) => {
      channel = null;
      consumerTag = null;
      if (connected && !closed) {
        connected = false;
        onStatus({ state: "disconnected", at: Date.now() / 1000, reason });
      }
    },
  );

  return {
    subscribed,
    async close() {
      closed = true;
      if (reportTimer) clearTimeout(reportTimer);
      report();
      // Stop deliveries but keep the channel: what the collector still
      // holds is acknowledged as it commits, until the connection closes
      // (the adapter's close). Whatever is not by then goes back to the
      // queue for the next collector.
      const ch = channel;
      const tag = consumerTag;
      if (ch && tag) await ch.cancel(tag).catch(() => {});
      markSubscribed();
    },
  };
}
