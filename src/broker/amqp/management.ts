/**
 * RabbitMQ's management plugin HTTP API (RABBITMQ_MANAGEMENT_URL), optional:
 * what AMQP itself does not tell a third party. A passive queue.declare
 * gives a queue's ready messages and consumers, but not its unacknowledged
 * deliveries, nor the names of queues nobody mentioned; /api/queues gives
 * both. Nor does it say how the node is doing: /api/nodes gives its memory
 * against the high watermark and its memory and disk alarms, which block
 * every publisher while raised.
 */
import { errorText, type Logger } from "../../log.ts";
import type { BrokerHealth, QueueConsumer } from "../port.ts";

export interface ManagedQueue {
  name: string;
  /** Delivered to consumers, not yet acknowledged. */
  unacked: number;
}

export interface ManagementApi {
  /** Every queue of the vhost, with its unacknowledged count. */
  queues(): Promise<ManagedQueue[]>;
  /** The cluster's health: memory against the high watermark, the memory and disk alarms (/api/nodes, /api/overview). */
  health(): Promise<BrokerHealth>;
  /** Every consumer of the vhost, with its prefetch and its channel's unacknowledged count. */
  consumers(): Promise<QueueConsumer[]>;
}

/** Consumers listed at most (a vhost with more is shown in part). */
const MAX_CONSUMERS = 1000;

/** A field of an untrusted JSON value, when it is an object that has it. */
function member(o: unknown, key: string): unknown {
  return typeof o === "object" && o !== null && !Array.isArray(o) && Object.hasOwn(o, key) ? (o as Record<string, unknown>)[key] : undefined;
}
const str = (o: unknown, key: string) => {
  const v = member(o, key);
  return typeof v === "string" ? v : undefined;
};
const num = (o: unknown, key: string) => {
  const v = member(o, key);
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
};

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

  /** get(), with a failure logged once per distinct error. */
  async function read(path: string): Promise<unknown> {
    try {
      return await get(path);
    } catch (e) {
      log.once(`management:${errorText(e)}`, `RabbitMQ management API: ${errorText(e)}`);
      throw e;
    }
  }

  return {
    async health() {
      const [nodes, overview] = await Promise.all([
        read("/api/nodes?columns=name,running,mem_used,mem_limit,mem_alarm,disk_free,disk_free_alarm,uptime"),
        read("/api/overview?columns=rabbitmq_version,object_totals.connections,message_stats.publish_details.rate"),
      ]);
      return healthFromManagement(nodes, overview, Date.now() / 1000);
    },

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

    async consumers() {
      const v = encodeURIComponent(vhost);
      // Unacknowledged deliveries are counted per channel; a worker consumes all its queues on one.
      const [consumers, channels] = await Promise.all([
        get(`/api/consumers/${v}`),
        // Paging this one answers HTTP 500 on RabbitMQ 3.10: the whole list, three columns.
        get(`/api/vhosts/${v}/channels?columns=name,messages_unacknowledged,global_prefetch_count`),
      ]);
      const unackedByChannel = new Map<string, number>();
      // Celery on RabbitMQ sets its prefetch on the channel (global QoS: RabbitMQ's
      // per-consumer semantics differ from the spec), so a consumer's own is 0.
      const globalPrefetch = new Map<string, number>();
      for (const c of Array.isArray(channels) ? channels.slice(0, 10 * MAX_CONSUMERS) : []) {
        const name = str(c, "name");
        const n = num(c, "messages_unacknowledged");
        if (name !== undefined && n !== undefined) unackedByChannel.set(name, n);
        const g = num(c, "global_prefetch_count");
        if (name !== undefined && g !== undefined) globalPrefetch.set(name, g);
      }
      const out: QueueConsumer[] = [];
      for (const c of Array.isArray(consumers) ? consumers.slice(0, MAX_CONSUMERS) : []) {
        const queue = str(member(c, "queue"), "name");
        const channel = member(c, "channel_details");
        const channelName = str(channel, "name");
        if (queue === undefined) continue;
        const peerHost = str(channel, "peer_host");
        const peerPort = num(channel, "peer_port");
        const own = num(c, "prefetch_count");
        const shared = channelName !== undefined ? globalPrefetch.get(channelName) : undefined;
        out.push({
          queue: queue.slice(0, 255),
          consumerTag: (str(c, "consumer_tag") ?? "").slice(0, 255),
          prefetch: own ? own : (shared ?? own ?? null),
          unacked: channelName !== undefined ? (unackedByChannel.get(channelName) ?? null) : null,
          channel: (channelName ?? "").slice(0, 255),
          peer: peerHost !== undefined ? `${peerHost.slice(0, 100)}${peerPort !== undefined ? `:${peerPort}` : ""}` : null,
        });
      }
      return out;
    },
  };
}

const field = (o: unknown, ...path: string[]): unknown => {
  let v: unknown = o;
  for (const k of path) v = typeof v === "object" && v !== null && k in v ? (v as Record<string, unknown>)[k] : undefined;
  return v;
};
const numberAt = (o: unknown, ...path: string[]): number | null => {
  const v = field(o, ...path);
  return typeof v === "number" && Number.isFinite(v) ? v : null;
};

/**
 * The cluster as one broker: the node closest to its memory watermark
 * speaks for memory (an alarm on any node blocks publishers on all), the
 * fullest disk for disk, the youngest node for uptime. Pure, for tests.
 */
export function healthFromManagement(nodes: unknown, overview: unknown, sampledAt: number): BrokerHealth {
  const running = (Array.isArray(nodes) ? nodes : []).filter((n) => field(n, "running") !== false);
  const ratio = (n: unknown) => (numberAt(n, "mem_used") ?? 0) / Math.max(1, numberAt(n, "mem_limit") ?? Infinity);
  const fullest = running.reduce<unknown>((a, n) => (a === undefined || ratio(n) > ratio(a) ? n : a), undefined);
  const diskFree = running.map((n) => numberAt(n, "disk_free")).filter((v): v is number => v !== null);
  const uptimes = running.map((n) => numberAt(n, "uptime")).filter((v): v is number => v !== null);
  const version = field(overview, "rabbitmq_version");
  return {
    kind: "rabbitmq",
    version: typeof version === "string" ? version.slice(0, 64) : null,
    // The API gives milliseconds.
    uptimeS: uptimes.length ? Math.min(...uptimes) / 1000 : null,
    usedMemoryBytes: numberAt(fullest, "mem_used"),
    maxMemoryBytes: numberAt(fullest, "mem_limit"),
    maxMemoryPolicy: null,
    connectedClients: numberAt(overview, "object_totals", "connections"),
    opsPerSecond: numberAt(overview, "message_stats", "publish_details", "rate"),
    evictedKeys: null,
    memoryAlarm: running.length ? running.some((n) => field(n, "mem_alarm") === true) : null,
    diskAlarm: running.length ? running.some((n) => field(n, "disk_free_alarm") === true) : null,
    diskFreeBytes: diskFree.length ? Math.min(...diskFree) : null,
    sampledAt,
  };
}
