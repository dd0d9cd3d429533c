/** kombu's reading of an amqp:// URL (kombu/utils/url.py), checked against Celery 5.2's own Connection. */
import { describe, expect, test } from "bun:test";
import { parseAmqpUrl } from "../../src/broker/amqp/url.ts";

describe("parseAmqpUrl", () => {
  test("the path is the vhost, url-decoded, without its first slash; none is /", () => {
    const vhost = (u: string) => parseAmqpUrl(u).vhost;
    expect(vhost("amqp://h//")).toBe("/");
    expect(vhost("amqp://h/")).toBe("/");
    expect(vhost("amqp://h")).toBe("/");
    expect(vhost("amqp://h/%2F")).toBe("/");
    expect(vhost("amqp://h/prod")).toBe("prod");
    expect(vhost("amqp://h//prod")).toBe("/prod");
    expect(vhost("amqp://h/a%2Fb")).toBe("a/b");
  });

  test("defaults: guest, guest, localhost, 5672; amqps and ?ssl=1 mean TLS on 5671", () => {
    expect(parseAmqpUrl("amqp://")).toMatchObject({ tls: false, hostname: "localhost", port: 5672, username: "guest", password: "guest", vhost: "/" });
    expect(parseAmqpUrl("amqps://h")).toMatchObject({ tls: true, port: 5671 });
    expect(parseAmqpUrl("pyamqp://h/vh?ssl=1")).toMatchObject({ tls: true, port: 5671, vhost: "vh" });
    expect(parseAmqpUrl("amqp://bob@h:5673//")).toMatchObject({ username: "bob", password: "guest", port: 5673 });
    expect(parseAmqpUrl("amqp://u:p%40ss%2Fw@[::1]:5673/x")).toMatchObject({ username: "u", password: "p@ss/w", hostname: "::1", vhost: "x" });
  });

  test("what may be printed never holds the password", () => {
    const t = parseAmqpUrl("amqp://user:hunter2@rabbit:5672/prod");
    expect(t.display).toBe("amqp://rabbit:5672/prod");
    expect(() => parseAmqpUrl("amqp://user:hunter2@rabbit/%zz")).toThrow("bad %-escape");
    expect(() => parseAmqpUrl("redis://h")).toThrow("expected amqp://");
  });
});
