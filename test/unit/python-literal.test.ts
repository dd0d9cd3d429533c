/**
 * The strict literal reader that decides whether a failed task's arguments
 * are known exactly (src/celery/python-literal.ts). The saferepr texts below
 * were printed by Celery 5.2's own `saferepr(value, 1024)`, as it fills
 * argsrepr/kwargsrepr.
 */
import { describe, expect, test } from "bun:test";
import { argsToRepr, literalToJson, parseLiteral } from "../../src/celery/python-literal.ts";

const json = (text: string, dialect: "saferepr" | "json" = "saferepr") => {
  const r = parseLiteral(text, dialect);
  if (!r.ok) throw new Error(r.reason);
  return literalToJson(r.value);
};
const refused = (text: string, dialect: "saferepr" | "json" = "saferepr") => {
  const r = parseLiteral(text, dialect);
  return r.ok ? null : r.reason;
};

describe("saferepr texts of JSON types are read exactly", () => {
  test("every JSON type, numbers kept as written", () => {
    expect(json("(1, 'a', None, True, False, 1.0, -2.5e-07, 1000000000000000000000000000000, [1, [2]], {'k': 'v'})")).toBe(
      '[1, "a", null, true, false, 1.0, -2.5e-07, 1000000000000000000000000000000, [1, [2]], {"k": "v"}]',
    );
  });
  test("a quote, the one escape saferepr writes; tuples of one and none; non-ASCII", () => {
    expect(json("{'x': 'it\\'s'}")).toBe('{"x": "it\'s"}');
    expect(json("('x',)")).toBe('["x"]');
    expect(json("()")).toBe("[]");
    expect(json("{}")).toBe("{}");
    expect(json("('<script>é😀',)")).toBe('["<script>é😀"]');
  });
  test("JSON dialect, as the result backend stores args with result_extended", () => {
    expect(json('[1, "a\\n\\u00e9", null, true, 2.50, {"k": [false]}]', "json")).toBe('[1, "a\\né", null, true, 2.50, {"k": [false]}]');
  });
});

describe("anything cut, ambiguous or not of a JSON type is refused", () => {
  const cases: [string, string, RegExp][] = [
    ["a long string Celery cut at 1,024 characters", `('${"a".repeat(1010)}...', ...`, /ending in \.\.\./],
    ["a long list cut", "([0, 1, 2, 22..., ...],)", /cut short/],
    ["nesting past three levels", "([[[...]]],)", /three levels/],
    ["a bare Ellipsis", "(1, ...)", /\.\.\./],
    ["a set", "({1, 2},)", /set/],
    ["bytes", "(b'ab',)", /not a literal of a JSON type/],
    ["a backslash (saferepr does not escape it)", "('back\\slash',)", /backslash/],
    ["a raw newline", "('line\nbreak',)", /control character/],
    ["an int dict key", "({1: 2},)", /not a string/],
    ["inf", "(inf,)", /not a literal/],
    ["nan", "(nan,)", /not a literal/],
    ["an object's repr", "(<object object at 0x7f>,)", /unexpected/],
    ["a Decimal", "(Decimal('1.5'),)", /Decimal is not a literal/],
    ["a call", "(datetime.datetime(2026, 1, 1),)", /datetime is not a literal/],
    ["hex", "(0x10,)", /not a JSON number/],
    ["underscores", "(1_000,)", /not a JSON number/],
    ["a parenthesised value is not a tuple", "(1)", /parenthesised/],
    ["text after the value", "(1,) x", /text after/],
    ["double quotes (saferepr never writes them)", '("a",)', /other dialect/],
    ["unterminated", "('abc", /unterminated/],
    ["empty", "", /unexpected end/],
  ];
  for (const [what, text, reason] of cases) {
    test(what, () => expect(refused(text)).toMatch(reason));
  }
  test("JSON: trailing commas, Python words, bad escapes", () => {
    expect(refused("[1,]", "json")).toMatch(/trailing comma/);
    expect(refused("[True]", "json")).toMatch(/not a literal/);
    expect(refused('["\\x41"]', "json")).toMatch(/unknown escape/);
  });
  test("deep nesting is refused, not a crash", () => {
    expect(refused("[".repeat(100_000), "json")).toMatch(/too deep/);
  });
});

test("argsrepr of a retried task reads back to the same value", () => {
  const r = parseLiteral('["it\'s", "a\\\\b", 1.0, null, {"k": ["x"]}]', "json");
  if (!r.ok || !Array.isArray(r.value)) throw new Error("parse");
  const repr = argsToRepr(r.value);
  expect(repr).toBe(`("it's", 'a\\\\b', 1.0, None, {'k': ['x']})`);
  expect(argsToRepr([])).toBe("()");
  expect(argsToRepr(["x"])).toBe("('x',)");
});
