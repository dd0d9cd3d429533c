/**
 * One state for "can the broker be reached": however many connections and
 * loops report the same outage, it is one log line, said again only every
 * REPEAT_EVERY_S, and one line when the broker is back.
 */
import { expect, test } from "bun:test";
import { brokerReachability, BrokerUnreachable, isBrokerUnreachable, REPEAT_EVERY_S } from "../../src/broker/reachability.ts";
import { logger, setLogLevel } from "../../src/log.ts";

function setup() {
  // The level is the process's: a test file run before this one in the same Bun may have lowered it.
  setLogLevel("info");
  const lines: string[] = [];
  let t = 1_000_000;
  const r = brokerReachability({ url: "redis://:***@broker:6379/0", log: logger("broker", (l) => lines.push(l)), now: () => t });
  return { r, lines, advance: (s: number) => (t += s) };
}

test("a broker never reached: one line with what was tried and what to do, repeated rarely", () => {
  const { r, lines, advance } = setup();
  expect(r.state.status).toBe("unknown");
  for (let i = 0; i < 50; i++) {
    r.down("connect ECONNREFUSED 10.0.0.5:6379");
    advance(2);
  }
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("warn");
  expect(lines[0]).toContain("no broker at redis://:***@broker:6379/0 (connect ECONNREFUSED 10.0.0.5:6379)");
  expect(lines[0]).toContain("BROKER_URL");
  expect(lines[0]).toContain("crisper demo");
  expect(r.state).toMatchObject({ status: "unreachable", everReached: false, reason: "connect ECONNREFUSED 10.0.0.5:6379" });
  advance(REPEAT_EVERY_S);
  r.down("connect ECONNREFUSED 10.0.0.5:6379");
  expect(lines).toHaveLength(2);
  expect(lines[1]).toContain("still, for 12 min: no broker at");
});

test("reached, lost, back: one line each way, and no advice to start a broker that was there", () => {
  const { r, lines, advance } = setup();
  r.up();
  r.up();
  expect(lines).toHaveLength(0);
  r.down("connection closed");
  r.down("connect ECONNREFUSED 10.0.0.5:6379");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("broker redis://:***@broker:6379/0 unreachable (connection closed); retrying");
  expect(lines[0]).not.toContain("crisper demo");
  advance(30);
  r.up();
  expect(lines).toHaveLength(2);
  expect(lines[1]).toContain("reachable again after 30 s");
  expect(r.state).toMatchObject({ status: "reachable", everReached: true, reason: null });
});

test("BrokerUnreachable is what the loops stay quiet about; its message is the adapters' usual one", () => {
  const e = new BrokerUnreachable("connect ECONNREFUSED 127.0.0.1:6379");
  expect(isBrokerUnreachable(e)).toBe(true);
  expect(e.message).toBe("unreachable (connect ECONNREFUSED 127.0.0.1:6379)");
  expect(isBrokerUnreachable(new Error("unreachable (x)"))).toBe(false);
});
