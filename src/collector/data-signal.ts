/**
 * Wakes the one reader waiting for messages: the writer loop sleeps here when
 * there is nothing to write, and the socket path wakes it without waiting.
 */
export class DataSignal {
  private waiter: (() => void) | null = null;

  /** Resolves at once when data is `ready`, otherwise at the next `notify`. */
  wait(ready: boolean): Promise<void> {
    if (ready) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Wakes the waiting reader, if any (data arrived, or shutdown). */
  notify(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}
