/**
 * What the queues page says of each broker beyond the stored samples: who
 * consumes each queue, with its prefetch and unacknowledged deliveries, where
 * the broker can tell (RabbitMQ with its management API), and what Crisper
 * cannot know where it cannot.
 */
import type { BrokerPort, QueueConsumer } from "../broker/port.ts";
import { errorText } from "../log.ts";

export interface BrokerNote {
  broker: string;
  /** Consumers by queue name; null where the broker cannot list them. */
  consumers: Map<string, QueueConsumer[]> | null;
  /** What is not known about this broker's queues, said plainly; null when everything is. */
  unknown: string | null;
}

/** A page must not wait long on a management API. */
const CONSUMERS_TIMEOUT_MS = 2000;

/** Each broker's note (only `only`'s when given), read live. */
export async function brokerNotes(brokers: ReadonlyMap<string, BrokerPort>, only?: string): Promise<BrokerNote[]> {
  const wanted = [...brokers].filter(([name]) => !only || name === only);
  return Promise.all(
    wanted.map(async ([broker, port]): Promise<BrokerNote> => {
      if (!port.capabilities.countsUnacked) {
        return {
          broker,
          consumers: null,
          unknown:
            "RabbitMQ tells a third party over AMQP only how many messages wait in a queue and how many consumers it has. " +
            "Without RABBITMQ_MANAGEMENT_URL (the management plugin's HTTP API), Crisper does not know the messages delivered to workers " +
            "and not yet acknowledged (Unacknowledged shows 0), each consumer's prefetch, nor the queues no worker or event named.",
        };
      }
      if (!port.consumers) return { broker, consumers: null, unknown: null };
      try {
        const list = await Promise.race([
          port.consumers(),
          Bun.sleep(CONSUMERS_TIMEOUT_MS).then(() => {
            throw new Error(`no answer within ${CONSUMERS_TIMEOUT_MS} ms`);
          }),
        ]);
        return { broker, consumers: Map.groupBy(list, (c) => c.queue), unknown: null };
      } catch (e) {
        return { broker, consumers: null, unknown: `The management API did not list the consumers (${errorText(e).slice(0, 200)}).` };
      }
    }),
  );
}
