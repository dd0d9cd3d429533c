/**
 * Live updates for the pages over SSE. The collector and the detectors say
 * what changed (`notify("tasks")`); at most once a second each open page
 * gets one event per kind, however busy the broker — a page then re-fetches
 * its own fragment. A comment line every 15 s keeps idle connections open.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";

export type LiveKind = "tasks" | "alerts" | "workers";

const FLUSH_MS = 1000;
const HEARTBEAT_MS = 15_000;
const MAX_SUBSCRIBERS = 1000;

export function createLiveHub() {
  const subscribers = new Set<(kind: LiveKind) => void>();
  const pending = new Set<LiveKind>();
  const timer = setInterval(() => {
    if (pending.size === 0) return;
    const kinds = [...pending];
    pending.clear();
    for (const send of subscribers) for (const k of kinds) send(k);
  }, FLUSH_MS);

  return {
    notify(kind: LiveKind) {
      pending.add(kind);
    },
    get subscribers() {
      return subscribers.size;
    },
    /** GET /live */
    handle(c: Context) {
      if (subscribers.size >= MAX_SUBSCRIBERS) return c.text("too many live connections", 503);
      return streamSSE(c, async (stream) => {
        let open = true;
        const send = (kind: LiveKind) => {
          if (open) void stream.writeSSE({ event: kind, data: String(Date.now()) }).catch(() => (open = false));
        };
        subscribers.add(send);
        stream.onAbort(() => {
          open = false;
        });
        await stream.writeSSE({ event: "hello", data: "live" });
        while (open) {
          await stream.sleep(HEARTBEAT_MS);
          if (open) await stream.write(": heartbeat\n\n").catch(() => (open = false));
        }
        subscribers.delete(send);
      });
    },
    close() {
      clearInterval(timer);
      subscribers.clear();
    },
  };
}

export type LiveHub = ReturnType<typeof createLiveHub>;

/** The NOTIFY channel that carries live kinds between Crisper processes. */
export const LIVE_CHANNEL = "crisper_live";

export function isLiveKind(s: string): s is LiveKind {
  return s === "tasks" || s === "alerts" || s === "workers";
}

/**
 * Passes changes on to other processes through the database, at most once a
 * second per kind (the pages need no more), for a collector whose pages are
 * served elsewhere.
 */
export function createLivePublisher(publish: (kind: LiveKind) => Promise<void>, onError: (e: Error) => void) {
  const pending = new Set<LiveKind>();
  const timer = setInterval(() => {
    const kinds = [...pending];
    pending.clear();
    for (const k of kinds) publish(k).catch(onError);
  }, FLUSH_MS);
  return {
    notify(kind: LiveKind) {
      pending.add(kind);
    },
    close() {
      clearInterval(timer);
    },
  };
}
