import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";

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

  test("a RabbitMQ URL stops with one line naming the variable and the fix, password hidden", () => {
    const r = parseConfig({ BROKER_URL: "amqp://user:secret@rabbit:5672//" });
    expect("error" in r).toBe(true);
    const error = (r as { error: string }).error;
    expect(error).toStartWith("BROKER_URL: expected redis:// or rediss://");
    expect(error).toContain("RabbitMQ");
    expect(error).not.toContain("secret");
    expect(error).not.toContain("\n");
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
