/**
 * A task's large fields are whole on its own answer and previews in lists:
 * a list of 500 tasks must not carry 500 tracebacks of ~64 KB each.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeEventBody } from "../../src/celery/envelope.ts";
import { logger } from "../../src/log.ts";
import { LIST_PREVIEW_CHARS } from "../../src/store/queries/tasks.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { createApp } from "../../src/web/app.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

let store: TestStore;
let app: ReturnType<typeof createApp>;
const ID = "5f0c7a0e-6a43-4b8e-9a4c-000000000001";
const T = 1_795_476_000;
const bigArgs = `(${JSON.stringify("a".repeat(20_000))},)`;
const bigTraceback = `Traceback (most recent call last):\n${"  File \"x.py\", line 1, in f\n".repeat(800)}ValueError: boom`;

beforeAll(async () => {
  store = await emptyStore("previews");
  const events = [
    { type: "task-received", uuid: ID, name: "app.fat", args: bigArgs, kwargs: "{}", hostname: "w@lab", timestamp: T, clock: 1, pid: 1 },
    { type: "task-failed", uuid: ID, exception: "ValueError('boom')", traceback: bigTraceback, hostname: "w@lab", timestamp: T + 1, clock: 2, pid: 1 },
  ];
  await writeBatch(store.database, buildBatch(decodeEventBody(JSON.stringify(events), "application/json", T + 2).events));
  app = createApp({ database: store.database, log: logger("test", () => {}), now: () => T + 10 });
});

afterAll(() => store?.remove());

const json = async (path: string) => (await (await app.request(path)).json()) as Record<string, any>;

test("the task's own answer has its fields whole; lists and searches carry previews", async () => {
  const one = (await json(`/api/tasks/${ID}`)).task;
  expect(one.args.length).toBeGreaterThan(5000); // bounded at decode (8 KB), whole here
  expect(one.traceback).toEndWith("ValueError: boom");

  for (const path of ["/api/tasks?limit=10", "/api/tasks?q=app.fat", "/api/tasks?q=aaaaaaaaaa"]) {
    const [listed] = (await json(path)).tasks;
    expect(listed?.id).toBe(ID);
    expect(listed.args).toHaveLength(LIST_PREVIEW_CHARS + 1);
    expect(listed.args).toEndWith("…");
    expect(listed.traceback).toHaveLength(LIST_PREVIEW_CHARS + 1);
    expect(listed.exception).toBe("ValueError('boom')");
  }
});
