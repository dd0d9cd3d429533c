import { describe, expect, test } from "bun:test";
import { type DropWindow, MessageBuffer } from "../../src/collector/buffer.ts";

describe("the bounded buffer", () => {
  test("keeps order and hands out at most what is asked", () => {
    const b = new MessageBuffer<number>(10);
    for (let i = 0; i < 5; i++) b.push(i);
    expect(b.take(3)).toEqual([0, 1, 2]);
    expect(b.take(10)).toEqual([3, 4]);
    expect(b.size).toBe(0);
  });

  test("when full it drops new messages, counts them, and reports the window once it drains", () => {
    const windows: DropWindow[] = [];
    const b = new MessageBuffer<number>(3, (w) => windows.push(w));
    for (let i = 0; i < 3; i++) expect(b.push(i, 100)).toBe(true);
    expect(b.push(3, 101)).toBe(false);
    expect(b.push(4, 102)).toBe(false);
    expect(b.dropped).toBe(2);
    expect(windows).toEqual([]);
    expect(b.take(2)).toEqual([0, 1]);
    expect(windows).toEqual([{ from: 101, to: 102, count: 2 }]);
    expect(b.push(5, 103)).toBe(true);
    expect(b.take(10)).toEqual([2, 5]);
  });

  test("an overload that keeps touching the limit is one window until the buffer drains to half", () => {
    const windows: DropWindow[] = [];
    const b = new MessageBuffer<number>(10, (w) => windows.push(w));
    let t = 100;
    for (let i = 0; i < 10; i++) b.push(i, t);
    // The database takes a little, the broker fills it again: many drops, one episode.
    for (let round = 0; round < 5; round++) {
      expect(b.push(99, ++t)).toBe(false);
      b.take(2);
      expect(b.push(1, t)).toBe(true);
      expect(b.push(2, t)).toBe(true);
    }
    expect(windows).toEqual([]);
    b.take(5);
    expect(windows).toEqual([{ from: 101, to: 105, count: 5 }]);
  });

  test("is bounded in bytes as well as in messages", () => {
    const windows: DropWindow[] = [];
    const b = new MessageBuffer<string>({ messages: 1000, bytes: 10 }, (w) => windows.push(w), (s) => s.length);
    expect(b.push("aaaa", 1)).toBe(true);
    expect(b.push("bbbb", 1)).toBe(true);
    expect(b.push("cccc", 2)).toBe(false);
    expect(b.push("dd", 2)).toBe(true);
    expect(b.bytes).toBe(10);
    expect(b.take(2)).toEqual(["aaaa", "bbbb"]);
    expect(b.bytes).toBe(2);
    expect(windows).toEqual([{ from: 2, to: 2, count: 1 }]);
  });

  test("waitForData resolves on the next push", async () => {
    const b = new MessageBuffer<string>(3);
    let woke = false;
    const p = b.waitForData().then(() => {
      woke = true;
    });
    await Bun.sleep(1);
    expect(woke).toBe(false);
    b.push("x");
    await p;
    expect(woke).toBe(true);
  });

  test("stays correct across compaction", () => {
    const b = new MessageBuffer<number>(1_000_000);
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 100_000; i++) b.push(next++);
      for (const x of b.take(90_000)) expect(x).toBe(expected++);
    }
    expect(b.size).toBe(next - expected);
  });
});
