/** The broker factory: an adapter by the URL's scheme, and a clear refusal otherwise. */
import { describe, expect, test } from "bun:test";
import { brokerKind, createBroker } from "../../src/broker/create.ts";
import { logger } from "../../src/log.ts";

const log = logger("test", () => {});

describe("createBroker", () => {
  test("redis:// and rediss:// open the Redis adapter, which can list unacked messages", async () => {
    for (const url of ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/3"]) {
      // Connections open on first use: nothing is dialled here.
      const broker = createBroker({ brokerUrl: url, log });
      expect(broker.capabilities).toEqual({ listsUnacked: true, countsUnacked: true, strandsPrefetched: true });
      await broker.close();
    }
  });

  test("amqp://, amqps:// and pyamqp:// open the RabbitMQ adapter, which requeues what a dead worker held", async () => {
    for (const url of ["amqp://guest:guest@127.0.0.1:1//", "amqps://127.0.0.1:1/prod", "pyamqp://127.0.0.1:1/"]) {
      expect(brokerKind(url)).toBe("rabbitmq");
      const broker = createBroker({ brokerUrl: url, log });
      expect(broker.capabilities).toEqual({ listsUnacked: false, countsUnacked: false, strandsPrefetched: false });
      await broker.close();
    }
  });

  test("another scheme is refused with the scheme and what is read, never the password", () => {
    expect(() => createBroker({ brokerUrl: "sqs://key:hunter2@queue//", log })).toThrow(
      "BROKER_URL: expected one of redis://, rediss://, amqp://, amqps://, pyamqp://; got sqs://…",
    );
    expect(() => createBroker({ brokerUrl: "//rabbit", log })).toThrow("got no scheme");
    expect(brokerKind("sqs://q")).toBeNull();
  });
});
