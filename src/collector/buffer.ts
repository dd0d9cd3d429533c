/**
 * The bounded buffer between the broker socket and the database.
 *
 * Redis cuts a PUB/SUB client that falls behind (client-output-buffer-limit),
 * and every message in between is lost without a trace. So the socket handler
 * never waits on the database: it only pushes here. If the database stays
 * slower than the broker for long enough to fill this buffer, new messages are
 * dropped — counted, logged, and remembered as a gap window — never silently.
 */
export interface DropWindow {
  from: number;
  to: number;
  count: number;
}

export class MessageBuffer<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private waiter: (() => void) | null = null;
  private dropping: DropWindow | null = null;
  dropped = 0;

  constructor(
    readonly capacity: number,
    private readonly onDropWindowClosed: (w: DropWindow) => void = () => {},
  ) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** Adds a message; returns false (and counts it) when full. */
  push(item: T, now = Date.now() / 1000): boolean {
    if (this.size >= this.capacity) {
      this.dropped++;
      if (this.dropping) {
        this.dropping.to = now;
        this.dropping.count++;
      } else this.dropping = { from: now, to: now, count: 1 };
      return false;
    }
    if (this.dropping) this.closeDropWindow();
    this.items.push(item);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w();
    }
    return true;
  }

  /** Takes up to `max` messages, oldest first. */
  /** The oldest item still held, if any. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  take(max: number): T[] {
    const end = Math.min(this.items.length, this.head + max);
    const out = this.items.slice(this.head, end) as T[];
    this.head = end;
    // Compact now and then so the array does not grow forever.
    if (this.head > 65536 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.size < this.capacity && this.dropping) this.closeDropWindow();
    return out;
  }

  /** Resolves when a message is waiting (at once if one is). */
  waitForData(): Promise<void> {
    if (this.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Wakes a waiting reader with nothing (used on shutdown). */
  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private closeDropWindow() {
    const w = this.dropping;
    this.dropping = null;
    if (w) this.onDropWindowClosed(w);
  }
}
