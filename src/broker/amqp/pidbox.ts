/**
 * Celery's remote control ("pidbox") on RabbitMQ, as kombu's Mailbox does it
 * (kombu/pidbox.py; celery/app/control.py makes it a fanout mailbox):
 * - a request is published to the `celery.pidbox` fanout exchange, which
 *   every worker's `<hostname>.celery.pidbox` queue is bound to. The body is
 *   the same JSON as on Redis (`method`, `arguments`, `destination`,
 *   `pattern`, `matcher`, and for a call `ticket` and `reply_to`), with
 *   headers `clock` and `expires`; on AMQP there is no kombu envelope;
 * - workers reply through the `reply.celery.pidbox` direct exchange with
 *   routing key `reply_to.routing_key`, headers `ticket`: Crisper binds a
 *   reply queue of its own, `<oid>.reply.celery.pidbox`, for each call.
 * Both exchanges are declared as kombu declares them (transient, not
 * auto-deleted), since publishing to a missing exchange is refused.
 */
import type { Channel } from "amqplib";
import type { BrokerPort, ControlCallOptions } from "../port.ts";
import { CONTROL_EXCHANGE, type ControlRequest, callRequest, controlBody, REPLY_EXCHANGE, replyBody } from "../../celery/control.ts";
import { type AmqpConnection, withChannel } from "./connection.ts";

/** kombu's `reply_queue_expires` (Celery's `control_queue_expires`), ms: a reply queue left behind goes away. */
const REPLY_QUEUE_EXPIRES_MS = 10_000;

async function publishRequest(ch: Channel, req: ControlRequest) {
  await ch.assertExchange(CONTROL_EXCHANGE, "fanout", { durable: false, autoDelete: false });
  ch.publish(CONTROL_EXCHANGE, "", Buffer.from(JSON.stringify(controlBody(req))), {
    contentType: "application/json",
    contentEncoding: "utf-8",
    deliveryMode: 1,
    headers: { clock: 1, expires: req.expires },
  });
}

export function amqpPidbox(connection: AmqpConnection): Pick<BrokerPort, "broadcast" | "call"> {
  return {
    async broadcast(method, args = {}, destination) {
      const model = await connection.ready();
      await withChannel(model, (ch) =>
        publishRequest(ch, { method, arguments: args, destination: destination ?? null, expires: Date.now() / 1000 + 10 }),
      );
    },

    async call(method, args = {}, callOpts: ControlCallOptions = {}) {
      const timeoutMs = callOpts.timeoutMs ?? 1000;
      const limit = callOpts.limit ?? callOpts.destination?.length ?? Number.POSITIVE_INFINITY;
      const model = await connection.ready();
      const oid = crypto.randomUUID();
      const ticket = crypto.randomUUID();
      const replies: Record<string, unknown> = {};
      await withChannel(model, async (ch) => {
        await ch.assertExchange(REPLY_EXCHANGE, "direct", { durable: false, autoDelete: false });
        // Deleted with this channel's consumer (auto-delete), or by x-expires if that fails.
        const { queue } = await ch.assertQueue(`${oid}.${REPLY_EXCHANGE}`, {
          durable: false,
          autoDelete: true,
          exclusive: true,
          expires: REPLY_QUEUE_EXPIRES_MS,
        });
        await ch.bindQueue(queue, REPLY_EXCHANGE, oid);
        let count = 0;
        let finish: () => void = () => {};
        const finished = new Promise<void>((resolve) => {
          finish = resolve;
        });
        const timer = setTimeout(() => finish(), timeoutMs);
        await ch.consume(
          queue,
          (m) => {
            if (!m) return finish();
            const headers = m.properties.headers ?? {};
            if (headers.ticket !== ticket) return;
            const reply = replyBody(m.content.toString("utf8"));
            if (!reply) return;
            for (const [worker, value] of Object.entries(reply)) {
              replies[worker] = value;
              count++;
            }
            if (count >= limit) finish();
          },
          { noAck: true },
        );
        await publishRequest(ch, callRequest(method, args, { destination: callOpts.destination, ticket, replyTo: oid, timeoutMs }));
        await finished;
        clearTimeout(timer);
      });
      return replies;
    },
  };
}
