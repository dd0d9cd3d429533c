/**
 * What the collector holds between the broker socket and the database: the
 * bounded memory buffer and, behind it, the spool on disk (spool.ts).
 *
 * Order is kept: while the spool holds anything, new messages go to its end,
 * after the older ones, and the memory buffer (which then holds only
 * messages older than the spool's) is taken first. So an overload or an
 * outage drains back in arrival order, and nothing is written twice or
 * skipped across the switch.
 *
 * Messages are dropped only when the spool is full too. Even then one goes
 * into memory out of turn if there is room (the store's merges do not depend
 * on order; losing it would). A drop is counted, and an overload is one drop
 * window (one gap, one log line) until the spool has drained below half.
 */
import { DataSignal } from "./data-signal.ts";
import type { RawMessage } from "../broker/port.ts";
import type { BacklogSizes } from "../metrics.ts";
import { type BufferLimits, type DropWindow, MessageBuffer } from "./buffer.ts";
import type { Spool } from "./spool.ts";

const EPISODE_ENDS_BELOW = 0.5;

/** A message's cost in memory: strings of ASCII take a byte per character; the rest is the object around them. */
export const sizeOfMessage = (msg: RawMessage) => msg.data.length + msg.channel.length + 64;

export type Held = "memory" | "spool" | "dropped";

export class Backlog {
  private readonly memory: MessageBuffer<RawMessage>;
  private dropping: DropWindow | null = null;
  private readonly signal = new DataSignal();
  /** Messages dropped (both full). */
  dropped = 0;

  constructor(
    limits: BufferLimits,
    private readonly spool: Spool | null,
    private readonly onDropWindowClosed: (w: DropWindow) => void,
  ) {
    // Without a spool, the memory buffer drops and keeps the drop window itself.
    this.memory = new MessageBuffer<RawMessage>(limits, onDropWindowClosed, sizeOfMessage);
  }

  /** Holds a message (the socket path: never waits). */
  push(msg: RawMessage): Held {
    const held = this.hold(msg);
    if (held === "dropped") this.dropped++;
    else this.signal.notify();
    return held;
  }

  private hold(msg: RawMessage): Held {
    if (!this.spool) return this.memory.push(msg, msg.receivedAt) ? "memory" : "dropped";
    if (this.spool.size === 0 && this.memory.offer(msg)) return "memory";
    if (this.spool.append(msg)) return "spool";
    if (this.memory.offer(msg)) return "memory";
    if (this.dropping) {
      this.dropping.to = msg.receivedAt;
      this.dropping.count++;
    } else this.dropping = { from: msg.receivedAt, to: msg.receivedAt, count: 1 };
    return "dropped";
  }

  /** Takes up to `max` messages, oldest first: memory, then (unless told not to) the spool. */
  take(max: number, fromSpool = true): RawMessage[] {
    const out = this.memory.take(max);
    if (fromSpool && out.length < max && this.spool && this.spool.size > 0) {
      const more = this.spool.take(max - out.length);
      for (const m of more) out.push(m);
    }
    if (this.dropping && this.spool && this.spool.bytes <= this.spool.limitBytes * EPISODE_ENDS_BELOW) {
      const w = this.dropping;
      this.dropping = null;
      this.onDropWindowClosed(w);
    }
    return out;
  }

  /**
   * At shutdown: messages taken but not written (the database is down) go
   * back in front of the spool, to be written first by the next run. Returns
   * how many could not be kept (no spool).
   */
  requeue(messages: readonly RawMessage[]): number {
    if (messages.length === 0) return 0;
    if (!this.spool) return messages.length;
    this.spool.prepend(messages);
    return 0;
  }

  /** At shutdown: what is still in memory, oldest first (to requeue). */
  drainMemory(): RawMessage[] {
    return this.memory.take(Number.MAX_SAFE_INTEGER);
  }

  get size(): number {
    return this.memory.size + (this.spool?.size ?? 0);
  }

  get spooling(): boolean {
    return (this.spool?.size ?? 0) > 0;
  }

  /** Arrival time of the oldest message held, null if none. */
  oldestArrival(): number | null {
    return this.memory.peek()?.receivedAt ?? this.spool?.oldestArrival() ?? null;
  }

  sizes(): BacklogSizes {
    return {
      bufferMessages: this.memory.size,
      bufferBytes: this.memory.bytes,
      spoolMessages: this.spool?.size ?? 0,
      spoolBytes: this.spool?.bytes ?? 0,
    };
  }

  /** Says what is held, for a log line. */
  describe(): string {
    const s = this.sizes();
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
    return `${s.bufferMessages} messages (${mb(s.bufferBytes)}) in memory` + (this.spool ? `, ${s.spoolMessages} (${mb(s.spoolBytes)}) in the spool` : "");
  }

  /** Resolves when a message is waiting (at once if one is). */
  waitForData(): Promise<void> {
    return this.signal.wait(this.size > 0);
  }

  /** Wakes a waiting reader with nothing (used on shutdown). */
  wake(): void {
    this.signal.notify();
  }

  close(): void {
    this.spool?.close();
  }
}
