/** The broker factory: an adapter by the URL's scheme, and a clear refusal otherwise. */
import { describe, expect, test } from "bun:test";
import { createBroker } from "../../src/broker/create.ts";
import { logger } from "../../src/log.ts";

const log = logger("test", () => {});

describe("createBroker", () => {
  test("redis:// and rediss:// open the Redis adapter, which can list unacked messages", async () => {
    for (const url of ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/3"]) {
      // Connections open on first use: nothing is dialled here.
      const broker = createBroker({ brokerUrl: url, log });
      expect(broker.capabilities.listsUnacked).toBe(true);
      await broker.close();
    }
  });

  test("another scheme is refused with the scheme and the fix, never the password", () => {
    expect(() => createBroker({ brokerUrl: "amqp://guest:hunter2@rabbit:5672//", log })).toThrow(
      "BROKER_URL: expected redis:// or rediss://, got amqp://… (Crisper reads Celery's Redis broker; RabbitMQ is not supported yet, see README)",
    );
    expect(() => createBroker({ brokerUrl: "//rabbit", log })).toThrow("got no scheme");
  });
});
