/** Which event fields are left to the task row, and how they come back (store/shared-fields.ts). */
import { expect, test } from "bun:test";
import { withShared, withoutShared } from "../../src/store/shared-fields.ts";

const fieldsOf = (o: Record<string, unknown>) => Object.assign(Object.create(null) as Record<string, unknown>, JSON.parse(JSON.stringify(o)));

test("only fields the row holds as the same string, from the event stream, are left out, and they come back", () => {
  const fields = fieldsOf({ name: "app.add", args: "(1, 2)", kwargs: "{}", root_id: "r", retries: 0, eta: null, pid: 7 });
  const row = { info_source: 2, name: "app.add", args: "(1, 2)", kwargs: "{'other': 1}", root_id: "r", eta: null };
  const { mask, fields: rest } = withoutShared(fields, row);
  expect(Object.keys(rest).sort()).toEqual(["eta", "kwargs", "pid", "retries"]);
  const back = withShared(rest, mask, { name: "app.add", args: "(1, 2)", rootId: "r" });
  expect(Object.fromEntries(Object.entries(back).sort())).toEqual(Object.fromEntries(Object.entries(fields).sort()));
  // A row whose fields came from the result backend may still change: nothing is left out.
  expect(withoutShared(fields, { ...row, info_source: 1 }).mask).toBe(0);
  expect(withoutShared(fields, undefined).mask).toBe(0);
});

test("a field named __proto__ stays a field", () => {
  const fields = fieldsOf({ name: "x" });
  Object.defineProperty(fields, "__proto__", { value: { polluted: true }, enumerable: true, writable: true, configurable: true });
  const { fields: rest } = withoutShared(fields, { info_source: 2, name: "x" });
  expect(Object.hasOwn(rest, "__proto__")).toBe(true);
  expect(JSON.stringify(rest)).toBe('{"__proto__":{"polluted":true}}');
});
