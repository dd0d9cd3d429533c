/**
 * Logs are read by people and parsed by machines: a value from the wire must
 * not forge a line, a failed query must not dump its parameters, and a
 * secret must not reach the log at all.
 */
import { describe, expect, test } from "bun:test";
import { parseConfig, redact } from "../../src/config.ts";
import { errorText, logger } from "../../src/log.ts";

describe("log lines", () => {
  test("a hostname with a newline stays on one line, escaped", () => {
    const lines: string[] = [];
    logger("test", (l) => lines.push(l)).warn("worker evil@host\n2026-01-01T00:00:00Z info  crisper: all good\u001b[2J");
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain("\n");
    expect(lines[0]).not.toContain("\u001b");
    expect(lines[0]).toContain("evil@host\\n2026-01-01");
    expect(lines[0]).toContain("\\u001b[2J");
  });

  test("a huge message is cut, saying how much", () => {
    const lines: string[] = [];
    logger("test", (l) => lines.push(l)).warn("x".repeat(100_000));
    expect(lines[0]?.length).toBeLessThan(2200);
    expect(lines[0]).toContain("98000 more characters");
  });

  test("a failed query logs its reason and statement, not its parameters", () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `task-${i}`);
    const e = new Error(`Failed query: select state from tasks where id in ($1, $2)\nparams: ${ids.join(",")}`, { cause: new Error("canceling statement due to statement timeout") });
    const text = errorText(e);
    expect(text).toContain("canceling statement due to statement timeout");
    expect(text).toContain("select state from tasks");
    expect(text).not.toContain("task-4999");
    expect(text.length).toBeLessThan(300);
  });
});

describe("secrets", () => {
  test("redact hides the password however it is spelled, parsing the URL", () => {
    expect(redact("redis://:s3cret@broker:6379/0")).toBe("redis://:***@broker:6379/0");
    expect(redact("postgres://crisper:p%40ss%2Fw:rd@db:5432/crisper")).toBe("postgres://crisper:***@db:5432/crisper");
    expect(redact("postgres://db/crisper?user=c&password=hunter2")).toBe("postgres://db/crisper?user=c&password=***");
    expect(redact("redis://broker:6379/0")).toBe("redis://broker:6379/0");
    expect(redact("not a url with a p@ssword")).not.toContain("p@ssword");
  });

  test("a bad CRISPER_AUTH is never echoed", () => {
    const r = parseConfig({ CRISPER_AUTH: "admin:alice:ok root:bob:hunter2" });
    const text = "error" in r ? r.error : "";
    expect(text).toContain("CRISPER_AUTH");
    expect(text).not.toContain("hunter2");
  });

  test("a bad broker URL is shown without its password", () => {
    const r = parseConfig({ BROKER_URL: "mongodb://user:topsecret@host/db" });
    const text = "error" in r ? r.error : "";
    expect(text).toContain("BROKER_URL");
    expect(text).not.toContain("topsecret");
  });
});
