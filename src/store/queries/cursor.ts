/**
 * Opaque paging cursors: the sort key of the last row of a page. Timestamps
 * are kept as PostgreSQL prints them (microseconds), since a JS Date would
 * round to milliseconds and skip or repeat rows.
 */
export interface TaskCursor {
  at: string;
  id: string;
}

export function encodeCursor(c: TaskCursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id])).toString("base64url");
}

export function decodeCursor(s: string): TaskCursor | null {
  try {
    const v = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string" && !Number.isNaN(Date.parse(v[0]))) {
      return { at: v[0], id: v[1] };
    }
  } catch {}
  return null;
}
