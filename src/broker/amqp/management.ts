/**
 * RabbitMQ's management plugin HTTP API (RABBITMQ_MANAGEMENT_URL), optional:
 * what AMQP itself does not tell a third party. A passive queue.declare
 * gives a queue's ready messages and consumers, but not its unacknowledged
 * deliveries, nor the names of queues nobody mentioned; /api/queues gives
 * both.
 */
import { errorText, type Logger } from "../../log.ts";

export interface ManagedQueue {
  name: string;
  /** Delivered to consumers, not yet acknowledged. */
  unacked: number;
}

export interface ManagementApi {
  /** Every queue of the vhost, with its unacknowledged count. */
  queues(): Promise<ManagedQueue[]>;
}

const TIMEOUT_MS = 3000;
/** A vhost with more queues than this is sampled in part (the API pages them). */
const PAGE_SIZE = 500;

export function managementApi(url: string, vhost: string, log: Logger): ManagementApi {
  const base = new URL(url);
  // fetch() refuses credentials in the URL: they go in the header.
  const auth = base.username ? `Basic ${btoa(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`)}` : null;
  base.username = "";
  base.password = "";
  const root = base.toString().replace(/\/+$/, "");

  async function get(path: string): Promise<unknown> {
    const res = await fetch(`${root}${path}`, {
      headers: auth ? { authorization: auth } : {},
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`RabbitMQ management API ${path.split("?")[0]}: HTTP ${res.status}`);
    return res.json();
  }

  return {
    async queues() {
      const path = `/api/queues/${encodeURIComponent(vhost)}?page=1&page_size=${PAGE_SIZE}&columns=name,messages_unacknowledged`;
      let body: unknown;
      try {
        body = await get(path);
      } catch (e) {
        log.once(`management:${errorText(e)}`, `RabbitMQ management API: ${errorText(e)}`);
        throw e;
      }
      const items = typeof body === "object" && body !== null && "items" in body && Array.isArray(body.items) ? body.items : [];
      const out: ManagedQueue[] = [];
      for (const item of items) {
        if (typeof item !== "object" || item === null) continue;
        const name = "name" in item && typeof item.name === "string" ? item.name : null;
        if (name === null) continue;
        const unacked = "messages_unacknowledged" in item && typeof item.messages_unacknowledged === "number" ? item.messages_unacknowledged : 0;
        out.push({ name, unacked });
      }
      return out;
    },
  };
}
