/** The HTTP layer's small rules: the sign-in limit's window, what counts as plain text, which errors mean the database is down. */
import { describe, expect, test } from "bun:test";
import { TaskIdParams, TaskListQuery } from "../../src/api/schemas.ts";
import { DeadlineExceeded, within } from "../../src/http/deadline.ts";
import { HttpError, isDatabaseUnavailable } from "../../src/http/errors.ts";
import { createSignInLimit } from "../../src/http/sign-in-limit.ts";
import { readAtMost } from "../../src/http/requests.ts";

describe("sign-in limit", () => {
  test("the 11th failure within a minute is refused until the oldest counted one is a minute old", () => {
    let t = 1_000_000;
    const limit = createSignInLimit(10, () => t);
    for (let i = 0; i < 10; i++) {
      expect(limit.retryAfter("10.0.0.1")).toBe(0);
      limit.failed("10.0.0.1");
      t += 1000;
    }
    // Ten failures, one a second: the first was 10 s ago, so 50 s to wait.
    expect(limit.retryAfter("10.0.0.1")).toBe(50);
    expect(limit.retryAfter("10.0.0.2")).toBe(0);
    t += 50_000;
    expect(limit.retryAfter("10.0.0.1")).toBe(0);
    // One more failure: the window still holds nine, so the tenth refuses again.
    limit.failed("10.0.0.1");
    expect(limit.retryAfter("10.0.0.1")).toBeGreaterThan(0);
  });

  test("a spray of addresses costs bounded memory and forgets the oldest", () => {
    const limit = createSignInLimit(1, () => 0);
    limit.failed("first");
    for (let i = 0; i < 10_001; i++) limit.failed(`10.1.${i >> 8}.${i & 255}`);
    expect(limit.retryAfter("first")).toBe(0);
    expect(limit.retryAfter("10.1.39.16")).toBeGreaterThan(0);
  });
});

describe("plain text in parameters", () => {
  test("a whole surrogate pair is text; half of one, a NUL, an escape or a C1 control is not", () => {
    expect(TaskIdParams.safeParse({ id: "task-🙂-naïve" }).success).toBe(true);
    for (const id of ["a\ud800", "\udc00b", "a\u0000b", "\u001b[31m", "a\u0085b", "a\u007f", "x".repeat(256)]) {
      expect(TaskIdParams.safeParse({ id }).success).toBe(false);
    }
  });

  test("limit: digits only; more than 500 is 500", () => {
    expect(TaskListQuery.parse({ limit: "100000" }).limit).toBe(500);
    expect(TaskListQuery.parse({ limit: "" }).limit).toBe(50);
    for (const limit of ["0", "-1", "2.5", "1e3", " 5", "0x10"]) expect(TaskListQuery.safeParse({ limit }).success).toBe(false);
  });
});

describe("errors", () => {
  test("a refused or lost connection, a shut-down server or a statement timeout mean the database is down; a bad query does not", () => {
    const withCode = (code: string) => Object.assign(new Error(code), { code });
    for (const code of ["ECONNREFUSED", "CONNECTION_CLOSED", "CONNECT_TIMEOUT", "57P01", "57P03", "08006", "57014"]) {
      expect(isDatabaseUnavailable(withCode(code))).toBe(true);
      // Wrapped, as drizzle wraps the driver's error.
      expect(isDatabaseUnavailable(new Error("Failed query: select 1", { cause: withCode(code) }))).toBe(true);
    }
    for (const e of [withCode("42P01"), withCode("22021"), new TypeError("x is not a function"), new HttpError(400, "no")]) {
      expect(isDatabaseUnavailable(e)).toBe(false);
    }
  });

  test("within: the work's answer, or DeadlineExceeded", async () => {
    expect(await within(1000, Promise.resolve(7))).toBe(7);
    await expect(within(10, new Promise(() => {}))).rejects.toBeInstanceOf(DeadlineExceeded);
  });
});

describe("readAtMost", () => {
  const stream = (chunks: number[]) =>
    new ReadableStream<Uint8Array>({
      pull(c) {
        const n = chunks.shift();
        if (n === undefined) c.close();
        else c.enqueue(new Uint8Array(n));
      },
    });

  test("reads a body up to the limit, and gives up past it without reading the rest", async () => {
    expect((await readAtMost(stream([10, 20]), 30))?.length).toBe(30);
    const chunks = [20, 20, 20, 20];
    expect(await readAtMost(stream(chunks), 30)).toBeNull();
    expect(chunks.length).toBeGreaterThanOrEqual(1);
    expect((await readAtMost(null, 30))?.length).toBe(0);
  });
});
