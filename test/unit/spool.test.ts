/**
 * The spool on disk and the backlog in front of it: spill, restart, drain in
 * order, and a full spool that drops, counts and reports one window.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RawMessage } from "../../src/broker/port.ts";
import { Backlog } from "../../src/collector/backlog.ts";
import type { DropWindow } from "../../src/collector/buffer.ts";
import { Spool } from "../../src/collector/spool.ts";
import { logger, setLogLevel } from "../../src/log.ts";

const lines: string[] = [];
const log = logger("spool-test", (l) => lines.push(l));

let dir: string;
beforeEach(() => {
  // Other test files in the same run may have raised the (process-wide) level.
  setLogLevel("info");
  dir = mkdtempSync(join(tmpdir(), "crisper-spool-"));
  lines.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Message n: its number in the data, varied channels and streams, some text that is not ASCII. */
function message(n: number, size = 200): RawMessage {
  return {
    stream: n % 7 === 0 ? "result-backend" : "events",
    channel: n % 3 === 0 ? "/0.celeryev/task.multi" : "/0.celeryev/worker.heartbeat",
    data: JSON.stringify({ n, pad: "x".repeat(size), text: "héllo ✓ 日本" }),
    receivedAt: 1_700_000_000 + n / 1000,
  };
}
const numbers = (ms: readonly RawMessage[]) => ms.map((m) => (JSON.parse(m.data) as { n: number }).n);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const segments = () => readdirSync(dir).filter((f) => f.endsWith(".seg"));

describe("the spool", () => {
  test("keeps an AMQP message's content type, across a restart", () => {
    const amqp: RawMessage[] = [
      { ...message(1), channel: "task.multi", contentType: "application/json" },
      { ...message(2), channel: "worker.heartbeat", contentType: "application/x-msgpack" },
      message(3),
    ];
    const spool = Spool.open({ dir, maxBytes: 64 << 20, log });
    for (const m of amqp) expect(spool.append(m)).toBe(true);
    spool.close();
    const again = Spool.open({ dir, maxBytes: 64 << 20, log });
    expect(again.take(10)).toEqual(amqp);
    again.close();
  });

  test("gives back every message exactly as written, in order, across segments", () => {
    const spool = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 64 << 10, log });
    const written = range(0, 3000).map((n) => message(n));
    for (const m of written) expect(spool.append(m)).toBe(true);
    expect(spool.size).toBe(3000);
    expect(spool.bytes).toBeGreaterThan(3000 * 200);
    const back: RawMessage[] = [];
    for (;;) {
      const batch = spool.take(700);
      if (batch.length === 0) break;
      back.push(...batch);
    }
    expect(back).toEqual(written);
    expect(spool.size).toBe(0);
    // Read segments are deleted; nothing is left behind.
    expect(segments()).toEqual([]);
    spool.close();
  });

  test("large messages among small ones, across segment cuts", () => {
    // A large one arrives when the pending writes fill a segment: the cut comes before it.
    const spool = Spool.open({ dir, maxBytes: 256 << 20, segmentBytes: 64 << 10, log });
    const written: RawMessage[] = [];
    for (let n = 0; n < 400; n++) written.push(message(n, n % 120 === 110 ? 700_000 + n : 3000));
    for (const m of written) expect(spool.append(m)).toBe(true);
    const back: RawMessage[] = [];
    for (let batch = spool.take(37); batch.length > 0; batch = spool.take(37)) back.push(...batch);
    expect(numbers(back)).toEqual(range(0, 400));
    expect(back).toEqual(written);
    expect(spool.lost).toBe(0);
    expect(lines.filter((l) => l.includes("error"))).toEqual([]);
    spool.close();
  });

  test("appends while it is being read, and keeps order", () => {
    const spool = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 32 << 10, log });
    const back: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 37; i++) spool.append(message(next++));
      back.push(...numbers(spool.take(29)));
    }
    back.push(...numbers(spool.take(100_000)));
    expect(back).toEqual(range(0, next));
    spool.close();
  });

  test("a restart takes over what was left, from where reading stood", () => {
    const first = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 64 << 10, log });
    for (const n of range(0, 2000)) first.append(message(n));
    expect(numbers(first.take(500))).toEqual(range(0, 500));
    first.close();

    const second = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 64 << 10, log });
    expect(second.size).toBe(1500);
    expect(lines.some((l) => l.includes("holds 1500 messages from before"))).toBe(true);
    for (const n of range(2000, 2100)) second.append(message(n));
    expect(numbers(second.take(100_000))).toEqual(range(500, 2100));
    second.close();
  });

  test("a record cut short by a crash is dropped at the next start, the rest kept", () => {
    const spool = Spool.open({ dir, maxBytes: 64 << 20, log });
    for (const n of range(0, 10)) spool.append(message(n));
    spool.close();
    const [segment] = segments();
    // Half a record: a length that promises more than follows.
    appendFileSync(join(dir, segment as string), Buffer.from([0xff, 0x00, 0x00, 0x00, 1, 2, 3]));
    const again = Spool.open({ dir, maxBytes: 64 << 20, log });
    expect(again.size).toBe(10);
    expect(numbers(again.take(100))).toEqual(range(0, 10));
    expect(lines.some((l) => l.includes("cut off"))).toBe(true);
    again.close();
  });

  test("refuses what would pass its bound", () => {
    const spool = Spool.open({ dir, maxBytes: 100_000, log });
    let accepted = 0;
    while (spool.append(message(accepted, 1000))) accepted++;
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(100);
    expect(spool.bytes).toBeLessThanOrEqual(100_000);
    // Room again once some is taken (and its segment read to the end).
    spool.take(accepted);
    expect(spool.append(message(999, 1000))).toBe(true);
    spool.close();
  });

  test("prepend puts messages before everything held, across a restart", () => {
    const spool = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 16 << 10, log });
    for (const n of range(100, 300)) spool.append(message(n));
    expect(numbers(spool.take(50))).toEqual(range(100, 150));
    spool.prepend(range(0, 100).map((n) => message(n)));
    spool.close();
    const again = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 16 << 10, log });
    expect(numbers(again.take(100_000))).toEqual([...range(0, 100), ...range(150, 300)]);
    again.close();
  });

  test("one process per spool", async () => {
    const other = Bun.spawn(["sleep", "30"]);
    try {
      writeFileSync(join(dir, "owner.pid"), String(other.pid));
      expect(() => Spool.open({ dir, maxBytes: 1 << 20, log })).toThrow(/uses the spool/);
    } finally {
      other.kill();
      await other.exited;
    }
    // Its owner gone, the spool is taken over.
    const spool = Spool.open({ dir, maxBytes: 1 << 20, log });
    spool.close();
    expect(existsSync(join(dir, "owner.pid"))).toBe(false);
  });
});

describe("the backlog: memory, then the spool", () => {
  const limits = { messages: 100 };

  test("spills when memory is full, and drains everything back in arrival order", () => {
    const spool = Spool.open({ dir, maxBytes: 64 << 20, segmentBytes: 32 << 10, log });
    const backlog = new Backlog(limits, spool, () => {});
    const held = range(0, 1000).map((n) => backlog.push(message(n)));
    expect(held.slice(0, 100).every((h) => h === "memory")).toBe(true);
    // Once spilling, everything goes to the spool, even when memory has room again.
    expect(held.slice(100).every((h) => h === "spool")).toBe(true);
    const back = numbers(backlog.take(150));
    for (const n of range(1000, 1100)) expect(backlog.push(message(n))).toBe("spool");
    back.push(...numbers(backlog.take(100_000)));
    expect(back).toEqual(range(0, 1100));
    // Drained: memory again.
    expect(backlog.push(message(1100))).toBe("memory");
    expect(backlog.dropped).toBe(0);
    backlog.close();
  });

  test("drops only when the spool is full too: counted, one window once it drains below half", () => {
    const spool = Spool.open({ dir, maxBytes: 200_000, log });
    const windows: DropWindow[] = [];
    const backlog = new Backlog(limits, spool, (w) => windows.push(w));
    let n = 0;
    const results: string[] = [];
    for (; n < 400; n++) results.push(backlog.push(message(n, 1000)));
    const dropped = results.filter((r) => r === "dropped").length;
    expect(dropped).toBeGreaterThan(0);
    expect(backlog.dropped).toBe(dropped);
    expect(windows).toEqual([]);
    // Taking drains memory first, then the spool; the window closes once the spool is below half.
    const taken = backlog.take(100_000);
    expect(taken.length).toBe(400 - dropped);
    expect(windows.length).toBe(1);
    expect(windows[0]?.count).toBe(dropped);
    // What was kept is in order, the drops are the tail.
    expect(numbers(taken)).toEqual(range(0, 400 - dropped));
    backlog.close();
  });

  test("at shutdown, requeued messages come first at the next start", () => {
    const spool = Spool.open({ dir, maxBytes: 64 << 20, log });
    const backlog = new Backlog(limits, spool, () => {});
    for (const n of range(0, 300)) backlog.push(message(n));
    const inFlight = backlog.take(40);
    const memory = backlog.drainMemory();
    expect(backlog.requeue([...inFlight, ...memory])).toBe(0);
    backlog.close();
    const again = new Backlog(limits, Spool.open({ dir, maxBytes: 64 << 20, log }), () => {});
    expect(again.size).toBe(300);
    // Still spilling after the restart: new messages queue behind the old ones.
    expect(again.push(message(300))).toBe("spool");
    expect(numbers(again.take(100_000))).toEqual(range(0, 301));
    again.close();
  });

  test("without a spool, a full buffer drops as before", () => {
    const windows: DropWindow[] = [];
    const backlog = new Backlog(limits, null, (w) => windows.push(w));
    for (const n of range(0, 150)) backlog.push(message(n));
    expect(backlog.dropped).toBe(50);
    expect(numbers(backlog.take(1000))).toEqual(range(0, 100));
    expect(windows.map((w) => w.count)).toEqual([50]);
    expect(backlog.requeue([message(1)])).toBe(1);
  });
});
