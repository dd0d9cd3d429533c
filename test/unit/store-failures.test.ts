/** Telling a database outage from bad data from a bug, by the error alone. */
import { expect, test } from "bun:test";
import postgres from "postgres";
import { ConnectionLostError, failureKind, isDatabaseUnavailable } from "../../src/store/database.ts";

const server = (code: string) => Object.assign(new postgres.PostgresError(`sqlstate ${code}`), { code, severity: "ERROR" });
const socket = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: code });
/** drizzle wraps the driver's error: "Failed query: …", with it as the cause. */
const wrapped = (cause: unknown) => new Error("Failed query: select 1\nparams: ", { cause });

test("connections lost, refused or cut, and cancelled statements are outages", () => {
  for (const e of [
    socket("ECONNREFUSED"),
    socket("ECONNRESET"),
    socket("CONNECTION_CLOSED"),
    socket("CONNECT_TIMEOUT"),
    new ConnectionLostError("commit"),
    server("57P01"), // terminating connection due to administrator command
    server("57P03"), // the database system is starting up
    server("57014"), // statement timeout
    server("08006"),
    wrapped(server("57P01")),
  ]) {
    expect(failureKind(e)).toBe("unreachable");
    expect(isDatabaseUnavailable(e)).toBe(true);
  }
  expect(failureKind(server("53100"))).toBe("transient"); // disk full
  expect(failureKind(server("40P01"))).toBe("transient"); // deadlock
});

test("values the database rejects are the data's fault; anything else is unknown", () => {
  for (const code of ["22P05", "23505", "42703", "54000", "22021"]) {
    expect(failureKind(server(code))).toBe("refused");
    expect(failureKind(wrapped(server(code)))).toBe("refused");
    expect(isDatabaseUnavailable(server(code))).toBe(false);
  }
  expect(failureKind(new TypeError("undefined is not an object"))).toBe("unknown");
  expect(failureKind(server("P0001"))).toBe("unknown");
  expect(failureKind("a string")).toBe("unknown");
  expect(isDatabaseUnavailable(null)).toBe(false);
});
