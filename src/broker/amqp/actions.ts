/**
 * Control actions on RabbitMQ. Nothing is ever stranded here (a closed
 * connection's deliveries go back to their queue at once), so there is no
 * requeue; a task is published as kombu's amqp transport publishes it (the
 * body as it is, the protocol v2 headers as AMQP headers, persistent), on a
 * confirm channel so the answer says RabbitMQ has it; a purge is AMQP's
 * `queue.purge`.
 */
import { EVENT_EXCHANGE } from "../../celery/control.ts";
import { taskSentEvent } from "../../celery/task-message.ts";
import type { BrokerPort } from "../port.ts";
import { type AmqpConnection, replyCode } from "./connection.ts";

export function amqpActions(connection: AmqpConnection): Required<Pick<BrokerPort, "publishTask" | "purgeQueue">> {
  return {
    async publishTask(m) {
      const model = await connection.ready();
      const ch = await model.createConfirmChannel();
      ch.on("error", () => {});
      try {
        // The default exchange routes by queue name; a named one by its bindings.
        ch.publish(m.exchange, m.exchange ? m.routingKey : m.queue, Buffer.from(m.body, "utf8"), {
          contentType: m.contentType,
          contentEncoding: m.contentEncoding,
          headers: m.headers,
          priority: m.priority,
          correlationId: m.id,
          deliveryMode: 2,
        });
        await ch.waitForConfirms();
      } finally {
        await ch.close().catch(() => {});
      }
      // Then the task-sent event, on the `celeryev` topic exchange. Only a nicety: an exchange no
      // worker has declared yet refuses it, and the task is sent either way.
      const events = await model.createChannel();
      events.on("error", () => {});
      try {
        const event = taskSentEvent(m, Date.now() / 1000);
        events.publish(EVENT_EXCHANGE, "task.sent", Buffer.from(JSON.stringify(event), "utf8"), {
          contentType: "application/json",
          contentEncoding: "utf-8",
          headers: { hostname: event.hostname },
          deliveryMode: 1,
        });
      } finally {
        await events.close().catch(() => {});
      }
    },

    async purgeQueue(queue) {
      const model = await connection.ready();
      const ch = await model.createChannel();
      ch.on("error", () => {});
      try {
        return (await ch.purgeQueue(queue)).messageCount;
      } catch (e) {
        // No such queue: nothing to purge.
        if (replyCode(e) === 404) return 0;
        throw e;
      } finally {
        await ch.close().catch(() => {});
      }
    },
  };
}
