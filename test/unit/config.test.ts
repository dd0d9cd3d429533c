import { describe, expect, test } from "bun:test";
import { parseConfig, parseDuration } from "../../src/config.ts";

describe("retention durations", () => {
  test("defaults are the contract's, in seconds", () => {
    const r = parseConfig({});
    if (!("config" in r)) throw new Error(r.error);
    expect([r.config.TASK_RETENTION, r.config.ALERT_RETENTION, r.config.STATS_RETENTION, r.config.RETENTION_INTERVAL_S]).toEqual([
      30 * 86_400,
      90 * 86_400,
      400 * 86_400,
      3600,
    ]);
  });

  test("90s, 15m, 12h, 30d and 2w are read; anything else stops with one line", () => {
    expect(["90s", "15m", "12h", "30d", "2w", "1.5h"].map(parseDuration)).toEqual([90, 900, 43_200, 2_592_000, 1_209_600, 5400]);
    for (const bad of ["30", "0d", "-1d", "30 days", "d", "1e3s"]) expect(parseDuration(bad)).toBeNull();
    expect((parseConfig({ TASK_RETENTION: "30" }) as { error: string }).error).toBe(
      'TASK_RETENTION: expected a duration such as 90s, 12h or 30d (got "30")',
    );
  });
});

describe("configuration", () => {
  test("defaults match the contract", () => {
    const r = parseConfig({});
    if (!("config" in r)) throw new Error(r.error);
    expect(r.config.BROKER_URL).toBe("redis://localhost:6379/0");
    expect(r.config.PORT).toBe(5555);
    expect(r.config.HOST).toBe("127.0.0.1");
    expect(r.config.DATA_DIR).toBe("./.crisper");
    expect(r.config.BROKER_VISIBILITY_TIMEOUT).toBe(3600);
    expect(r.config.DATABASE_URL).toBeUndefined();
    expect(r.config.ENABLE_EVENTS).toBe(true);
  });

  test("CELERY_BROKER_URL is accepted when BROKER_URL is not set", () => {
    const r = parseConfig({ CELERY_BROKER_URL: "redis://b:6380/2" });
    expect("config" in r && r.config.BROKER_URL).toBe("redis://b:6380/2");
  });

  test("RabbitMQ URLs in Celery's spellings are accepted, with their settings' defaults", () => {
    for (const url of ["amqp://user:secret@rabbit:5672//", "amqps://rabbit/prod", "pyamqp://guest@rabbit//", "AMQP://rabbit"]) {
      const r = parseConfig({ BROKER_URL: url });
      if (!("config" in r)) throw new Error(r.error);
      expect(r.config.BROKER_URL).toBe(url);
      expect(r.config.EVENT_QUEUE).toBe("crisper.events");
      expect(r.config.EVENT_QUEUE_EXPIRES_S).toBe(86_400);
      expect(r.config.EVENT_QUEUE_MAX_BYTES).toBe(256 * 2 ** 20);
      expect(r.config.BROKER_CONSUMER_TIMEOUT).toBe(1800);
      expect(r.config.RABBITMQ_MANAGEMENT_URL).toBeUndefined();
    }
  });

  test("another broker scheme stops with one line naming the variable and what is read, password hidden", () => {
    for (const url of ["sqs://user:secret@queue//", "amqp://user:secret@rabbit/%zz"]) {
      const r = parseConfig({ BROKER_URL: url });
      expect("error" in r).toBe(true);
      const error = (r as { error: string }).error;
      expect(error).toStartWith("BROKER_URL: ");
      expect(error).not.toContain("secret");
      expect(error).not.toContain("\n");
    }
    expect((parseConfig({ BROKER_URL: "sqs://q" }) as { error: string }).error).toContain("expected redis://, rediss://, amqp://, amqps:// or pyamqp://");
    // rpc:// cannot be read by a third party: the message says so.
    expect((parseConfig({ RESULT_BACKEND_URL: "rpc://" }) as { error: string }).error).toContain("rpc://");
    expect((parseConfig({ RABBITMQ_MANAGEMENT_URL: "amqp://x" }) as { error: string }).error).toStartWith("RABBITMQ_MANAGEMENT_URL:");
  });

  test("numbers and booleans are checked", () => {
    expect((parseConfig({ PORT: "http" }) as { error: string }).error).toStartWith("PORT:");
    expect((parseConfig({ BROKER_VISIBILITY_TIMEOUT: "-5" }) as { error: string }).error).toStartWith("BROKER_VISIBILITY_TIMEOUT:");
    expect((parseConfig({ ENABLE_EVENTS: "maybe" }) as { error: string }).error).toStartWith("ENABLE_EVENTS:");
    expect((parseConfig({ DATABASE_URL: "mysql://x" }) as { error: string }).error).toStartWith("DATABASE_URL:");
    const off = parseConfig({ ENABLE_EVENTS: "false" });
    expect("config" in off && off.config.ENABLE_EVENTS).toBe(false);
  });
});
