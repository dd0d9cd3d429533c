/**
 * The bounded buffer between the broker socket and the database.
 *
 * Redis cuts a PUB/SUB client that falls behind (client-output-buffer-limit),
 * and every message in between is lost without a trace. So the socket handler
 * never waits on the database: it only pushes here. If the database stays
 * slower than the broker for long enough to fill this buffer, new messages are
 * dropped — counted, logged, and remembered as a gap window — never silently.
 * It is bounded in bytes as well as in messages: that bound, not the count,
 * is what keeps a long overload from taking the machine's memory.
 */
import { DataSignal } from "./data-signal.ts";
export interface DropWindow {
  from: number;
  to: number;
  count: number;
}

export interface BufferLimits {
  /** Most messages held. */
  messages: number;
  /** Most bytes held (as each item's size says): what bounds the collector's memory. */
  bytes?: number;
}

/**
 * Once full, the buffer takes messages again as soon as there is room, but
 * the overload is one episode until it has drained below this fraction of its
 * limits: one drop window, one gap, one log line, however often it touches the
 * limit meanwhile.
 */
const EPISODE_ENDS_BELOW = 0.5;

export class MessageBuffer<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private readonly signal = new DataSignal();
  private dropping: DropWindow | null = null;
  private held = 0;
  readonly capacity: number;
  readonly capacityBytes: number;
  dropped = 0;

  constructor(
    limits: number | BufferLimits,
    private readonly onDropWindowClosed: (w: DropWindow) => void = () => {},
    /** An item's size in bytes, counted against `limits.bytes`. */
    private readonly sizeOf: (item: T) => number = () => 0,
  ) {
    const l = typeof limits === "number" ? { messages: limits } : limits;
    this.capacity = l.messages;
    this.capacityBytes = l.bytes ?? Number.POSITIVE_INFINITY;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Bytes held, as sizeOf counts them. */
  get bytes(): number {
    return this.held;
  }

  /** Adds a message if there is room; returns false (counting nothing) when full. */
  offer(item: T): boolean {
    const bytes = this.sizeOf(item);
    if (this.size >= this.capacity || this.held + bytes > this.capacityBytes) return false;
    this.items.push(item);
    this.held += bytes;
    this.signal.notify();
    return true;
  }

  /** Adds a message; returns false (and counts it as dropped) when full. */
  push(item: T, now = Date.now() / 1000): boolean {
    if (!this.offer(item)) {
      this.dropped++;
      if (this.dropping) {
        this.dropping.to = now;
        this.dropping.count++;
      } else this.dropping = { from: now, to: now, count: 1 };
      return false;
    }
    return true;
  }

  /** The oldest item still held, if any. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Takes up to `max` messages, oldest first. */
  take(max: number): T[] {
    const end = Math.min(this.items.length, this.head + max);
    const out = this.items.slice(this.head, end) as T[];
    for (let i = this.head; i < end; i++) this.items[i] = undefined;
    for (const item of out) this.held -= this.sizeOf(item);
    this.head = end;
    // Compact now and then so the array does not grow forever.
    if (this.head > 65536 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.dropping && this.size <= this.capacity * EPISODE_ENDS_BELOW && this.held <= this.capacityBytes * EPISODE_ENDS_BELOW) {
      this.closeDropWindow();
    }
    return out;
  }

  /** Resolves when a message is waiting (at once if one is). */
  waitForData(): Promise<void> {
    return this.signal.wait(this.size > 0);
  }

  /** Wakes a waiting reader with nothing (used on shutdown). */
  wake(): void {
    this.signal.notify();
  }

  private closeDropWindow() {
    const w = this.dropping;
    this.dropping = null;
    if (w) this.onDropWindowClosed(w);
  }
}
