/**
 * What a request may be before any route reads it: a URL that decodes, a
 * body no bigger than its purpose needs, counted while it is read (a
 * chunked body announces no length, so a Content-Length check alone lets
 * 50 MB through).
 */
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { Env } from "./context.ts";
import { HttpError } from "./errors.ts";

/** A form or a JSON action (revoke, a schedule) is a few hundred bytes. */
export const MAX_ACTION_BODY_BYTES = 64 * 1024;

/** A refusal, then: the body is not read further and the connection is not kept. */
export const tooLarge = (limit: number) =>
  Response.json({ error: `request body too large: at most ${limit} bytes` }, { status: 413, headers: { connection: "close" } });

/**
 * Reads a body up to `limit` bytes, counting as it reads: past the limit it
 * stops reading, cancels the stream, and returns null. Never holds more than
 * `limit` bytes plus one chunk.
 */
export async function readAtMost(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer | null> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

/** Middleware: a body over `limit` bytes, declared or counted while read, is a 413. */
export const bodyAtMost = (limit = MAX_ACTION_BODY_BYTES) =>
  bodyLimit({
    maxSize: limit,
    onError: () => {
      throw new HttpError(413, `request body too large: at most ${limit} bytes`);
    },
  });

/**
 * Middleware: the path and query must be percent-encoded UTF-8. A sequence
 * that does not decode (`%ED%A0%80`, half of a UTF-16 surrogate pair; `%FF`;
 * a stray `%`) would otherwise reach the routes as its raw text, since Hono
 * keeps what it cannot decode: refused here, named by its parameter.
 */
export const wellFormedUrl = createMiddleware<Env>(async (c, next) => {
  const url = c.req.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", start);
  const path = query < 0 ? url.slice(start) : url.slice(start, query);
  if (!decodes(path)) throw new HttpError(400, "path: not valid percent-encoded UTF-8");
  if (query >= 0) {
    for (const pair of url.slice(query + 1).split("&")) {
      const eq = pair.indexOf("=");
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if (!decodes(pair.replaceAll("+", " "))) throw new HttpError(400, `${decodes(name) ? name.slice(0, 40) : "a parameter"}: not valid percent-encoded UTF-8`);
    }
  }
  await next();
});

function decodes(s: string): boolean {
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}
