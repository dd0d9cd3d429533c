/**
 * A strict reader of literal values, for retrying a task with exactly the
 * arguments it had (src/api/retry.ts). Two dialects:
 *
 * - `saferepr`: what Celery puts in `argsrepr`/`kwargsrepr` (and so in the
 *   events' `args`/`kwargs`): Python literal syntax written by
 *   `celery.utils.saferepr`, which differs from `repr()` in ways that make
 *   some texts ambiguous. It quotes every string with `'` and escapes only
 *   the quote (`'` → `\'`): a backslash, a newline, any other character is
 *   written as it is. So a backslash in a string could be one the value had
 *   or the start of an escape, and this reader refuses it. It cuts at 1,024
 *   characters, always leaving `...`: a string ending in `...`, a number
 *   ending in `...`, a bare `...` (Ellipsis) or `[...]` (nesting past three
 *   levels) — all refused, since the value was cut.
 * - `json`: JSON text, e.g. the result backend's `args` with result_extended.
 *
 * Only values of JSON's types are accepted: str, int, float, True/False/None
 * (true/false/null in JSON), list, tuple (read as a list: Celery's JSON
 * serializer sends a tuple as a list anyway), dict with string keys. Sets,
 * bytes, Decimals, objects' reprs, inf and nan are refused with a reason.
 *
 * Numbers keep the text they were written with (`1.0` stays `1.0`, an int of
 * 30 digits stays exact), so the JSON sent to the worker decodes to the same
 * Python values, not to what a JavaScript double would make of them.
 */

/** A number as written: its text is valid JSON (checked). */
export class LiteralNumber {
  constructor(readonly text: string) {}
}

export type Literal = string | LiteralNumber | boolean | null | Literal[] | { [key: string]: Literal };

export type Dialect = "saferepr" | "json";

export type ParseResult = { ok: true; value: Literal } | { ok: false; reason: string };

/** Nesting deeper than this is refused (Celery's saferepr stops at 3 anyway). */
const MAX_DEPTH = 64;

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

class Refused extends Error {}

export function parseLiteral(text: string, dialect: Dialect): ParseResult {
  let i = 0;
  const fail = (why: string): never => {
    throw new Refused(`${why} at character ${i}`);
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i] as string)) i++;
  };

  function str(quote: string): string {
    i++; // the opening quote
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const ch = text[i] as string;
      if (ch === quote) {
        i++;
        if (dialect === "saferepr" && out.endsWith("...")) fail("a string ending in ... (Celery cuts long arguments so)");
        return out;
      }
      if (ch === "\\") {
        if (dialect === "saferepr") {
          // Only `\'` is an escape saferepr writes; any other backslash is ambiguous.
          if (text[i + 1] === "'") {
            out += "'";
            i += 2;
            continue;
          }
          fail("a backslash in a string (Celery's saferepr does not escape them, so the value is ambiguous)");
        }
        out += escape();
        continue;
      }
      if (ch < " ") {
        // JSON forbids raw control characters in strings; saferepr writes them raw, and
        // a newline can be told apart, but refusing keeps the rule simple.
        fail("a control character in a string");
      }
      out += ch;
      i++;
    }
  }

  /** A JSON escape, at `\`. */
  function escape(): string {
    const e = text[i + 1];
    const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
    if (e !== undefined && Object.hasOwn(simple, e)) {
      i += 2;
      return simple[e] as string;
    }
    if (e === "u") {
      const hex = text.slice(i + 2, i + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("a bad \\u escape");
      i += 6;
      return String.fromCharCode(Number.parseInt(hex, 16));
    }
    return fail("an unknown escape");
  }

  function number(): LiteralNumber {
    const m = /^-?[0-9][0-9a-zA-Z_.+-]*/.exec(text.slice(i));
    const t = m?.[0] ?? "";
    // Python's own `1_000`, `0x10`, `1.`, `.5`, `1j`, `inf` do not pass; neither does a cut `123...`.
    if (text.startsWith("...", i + t.length) || t.endsWith(".")) fail("a number cut short (...)");
    if (!JSON_NUMBER.test(t)) fail(`not a JSON number: ${t.slice(0, 20)}`);
    i += t.length;
    return new LiteralNumber(t);
  }

  function word(): boolean | null {
    const words: Record<string, boolean | null> = dialect === "json" ? { true: true, false: false, null: null } : { True: true, False: false, None: null };
    for (const [w, v] of Object.entries(words)) {
      if (text.startsWith(w, i) && !/[A-Za-z0-9_]/.test(text[i + w.length] ?? "")) {
        i += w.length;
        return v;
      }
    }
    if (text.startsWith("...", i)) fail("... (Celery cut the arguments here)");
    const w = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))?.[0];
    return fail(w ? `${w.slice(0, 20)} is not a literal of a JSON type` : `unexpected ${JSON.stringify(text[i] ?? "end")}`);
  }

  /** Items up to `close`, separated by commas; a trailing comma is Python's, not JSON's. */
  function items<T>(close: string, item: () => T): { list: T[]; trailingComma: boolean } {
    i++;
    const list: T[] = [];
    let trailingComma = false;
    space();
    if (text[i] === close) {
      i++;
      return { list, trailingComma };
    }
    for (;;) {
      list.push(item());
      space();
      if (text[i] === close) {
        i++;
        return { list, trailingComma };
      }
      if (text[i] !== ",") fail(`expected , or ${close}`);
      i++;
      space();
      if (text[i] === close) {
        if (dialect === "json") fail("a trailing comma");
        i++;
        return { list, trailingComma: true };
      }
    }
  }

  function value(depth: number): Literal {
    if (depth > MAX_DEPTH) fail("nested too deep");
    space();
    const ch = text[i];
    if (ch === undefined) return fail("unexpected end");
    if (ch === "'" && dialect === "saferepr") return str("'");
    if (ch === '"' && dialect === "json") return str('"');
    if (ch === '"' || ch === "'") return fail("a string in the other dialect's quotes");
    if (ch === "-" || (ch >= "0" && ch <= "9")) return number();
    if (ch === "[") {
      if (text.startsWith("[...]", i)) fail("[...] (Celery stops at three levels of nesting)");
      return items("]", () => value(depth + 1)).list;
    }
    if (ch === "(" && dialect === "saferepr") {
      if (text.startsWith("(...)", i)) fail("(...) (Celery stops at three levels of nesting)");
      const { list, trailingComma } = items(")", () => value(depth + 1));
      // `(x)` is x in parentheses, not a tuple; saferepr writes a one-tuple `(x,)`.
      if (list.length === 1 && !trailingComma) fail("a parenthesised value, not a tuple");
      return list;
    }
    if (ch === "{") {
      if (text.startsWith("{...}", i)) fail("{...} (Celery stops at three levels of nesting)");
      const obj: { [key: string]: Literal } = Object.create(null);
      items("}", () => {
        space();
        const quote = dialect === "json" ? '"' : "'";
        if (text[i] !== quote) fail("a set, or a dict key that is not a string: not JSON types");
        const key = str(quote);
        space();
        if (text[i] !== ":") fail("a set is not a JSON type");
        i++;
        obj[key] = value(depth + 1);
      });
      return obj;
    }
    return word();
  }

  try {
    const v = value(0);
    space();
    if (i < text.length) fail("text after the value");
    return { ok: true, value: v };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, reason: e.message };
    if (e instanceof RangeError) return { ok: false, reason: "nested too deep" };
    throw e;
  }
}

/** JSON text of a literal, numbers as they were written. */
export function literalToJson(v: Literal): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof LiteralNumber) return v.text;
  if (Array.isArray(v)) return `[${v.map(literalToJson).join(", ")}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${JSON.stringify(k)}: ${literalToJson(x)}`)
    .join(", ")}}`;
}

/** Python's repr of a literal (for the retried message's argsrepr/kwargsrepr), at most `max` characters. */
export function literalToRepr(v: Literal, max = 1024): string {
  const repr = (x: Literal): string => {
    if (x === null) return "None";
    if (typeof x === "boolean") return x ? "True" : "False";
    if (typeof x === "string") return pyStr(x);
    if (x instanceof LiteralNumber) return x.text;
    if (Array.isArray(x)) return `[${x.map(repr).join(", ")}]`;
    return `{${Object.entries(x)
      .map(([k, y]) => `${pyStr(k)}: ${repr(y)}`)
      .join(", ")}}`;
  };
  const text = repr(v);
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** Arguments as Python prints a tuple: `(1, 'a')`, `(1,)`. */
export function argsToRepr(args: Literal[], max = 1024): string {
  const inner = literalToRepr(args, Number.MAX_SAFE_INTEGER).slice(1, -1);
  const text = `(${inner}${args.length === 1 ? "," : ""})`;
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

function pyStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch < " " || ch === "\x7f") out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + quote;
}

/** Parsed JSON as a literal, for values that came as JSON already (the result backend's meta). */
export function isLiteralList(v: Literal): v is Literal[] {
  return Array.isArray(v);
}

export function isLiteralDict(v: Literal | undefined): v is { [key: string]: Literal } {
  return v !== undefined && v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof LiteralNumber);
}
