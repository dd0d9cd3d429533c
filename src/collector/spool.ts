/**
 * The spool: raw broker messages on disk, for when the memory buffer is full
 * (the database is down or slower than the broker for long). Bounded in bytes
 * (SPOOL_MAX_MB); read back in the order written; kept across a restart.
 *
 * Layout, in DATA_DIR/spool:
 * - numbered segment files (`001000000.seg`, …), each a run of records, cut
 *   at a size so that read ones are deleted whole;
 * - `position.json`: how far each partly read segment has been taken;
 * - `owner.pid`: the process using it (two collectors must not share one).
 *
 * A record: u32 length of the rest, f64 arrival time, u8 stream, u32 channel
 * length in bytes, the channel, the data (both UTF-8), little-endian. A
 * message that carries its content type (AMQP) sets WITH_CONTENT_TYPE in the
 * stream byte and its channel field holds `<length>:<content type><channel>`. The hot
 * path only copies a message into a pending buffer; it reaches the file in
 * large sequential writes (at FLUSH_BYTES, every FLUSH_INTERVAL_MS, before a
 * read and on close). Not fsync'd: the spool outlives the process (a crash,
 * a restart), not the machine.
 *
 * What has been taken is recorded at most every second: after a crash the
 * last second's messages may come back a second time, which the store's
 * idempotent writes absorb.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { RawMessage } from "../broker/port.ts";
import type { Logger } from "../log.ts";

export interface SpoolOptions {
  /** DATA_DIR/spool */
  dir: string;
  /** Most bytes on disk (SPOOL_MAX_MB). */
  maxBytes: number;
  /** Where a segment is cut (default: 1/16 of maxBytes, between 1 and 64 MB). */
  segmentBytes?: number;
  log: Logger;
}

const LENGTH_BYTES = 4;
/** arrival time (8), stream (1), channel length (4) */
const FIXED_BYTES = 13;
const FLUSH_BYTES = 1 << 20;
const FLUSH_INTERVAL_MS = 200;
const READ_BYTES = 4 << 20;
const POSITION_EVERY_MS = 1000;
/** A record longer than this is corruption, not a message (Redis's own limit is 512 MB; Crisper's buffer far less). */
const MAX_RECORD_BYTES = 256 << 20;
/** Segment numbers start high so that a shutdown can put messages before the first one (prepend). */
const FIRST_SEGMENT = 1_000_000;

const STREAMS: readonly RawMessage["stream"][] = ["events", "result-backend"];
/** Stream byte flag: the channel field starts with the message's content type. */
const WITH_CONTENT_TYPE = 0x80;

/** What a record's channel field holds (see the layout above). */
function channelField(m: RawMessage): string {
  return m.contentType === undefined ? m.channel : `${m.contentType.length}:${m.contentType}${m.channel}`;
}

/** The most bytes a message's record may take (UTF-8: at most 3 bytes per UTF-16 unit). */
function worstBytes(m: RawMessage): number {
  return LENGTH_BYTES + FIXED_BYTES + 3 * (channelField(m).length + m.data.length);
}

interface Segment {
  n: number;
  /** Bytes in the file (written, not pending). */
  size: number;
  /** Records in it not read yet. */
  unread: number;
  /** Offset of the first record not taken yet. */
  taken: number;
}

interface ReadAhead {
  message: RawMessage;
  segment: Segment;
  end: number;
}

export class Spool {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly log: Logger;
  /** Oldest first. */
  private segments: Segment[] = [];
  /** The last segment, while it is written to. */
  private writer: { segment: Segment; fd: number } | null = null;
  private pending = Buffer.allocUnsafe(2 * FLUSH_BYTES);
  private pendingUsed = 0;
  /** The segment being read, its file and where the next unread record starts. */
  private reading: { segment: Segment; fd: number; offset: number } | null = null;
  private readAhead: ReadAhead[] = [];
  private readAheadHead = 0;
  private bytesOnDisk = 0;
  private count = 0;
  private positionSavedAt = 0;
  private positionDirty = false;
  private flushTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** Messages lost to an unreadable segment (counted, logged). */
  lost = 0;

  private constructor(o: SpoolOptions) {
    this.dir = o.dir;
    this.maxBytes = o.maxBytes;
    this.segmentBytes = o.segmentBytes ?? Math.min(64 << 20, Math.max(1 << 20, Math.floor(o.maxBytes / 16)));
    this.log = o.log;
  }

  /**
   * Opens the spool in `dir`, taking over what a previous run left in it.
   * Throws if another live process uses it.
   */
  static open(o: SpoolOptions): Spool {
    const spool = new Spool(o);
    spool.load();
    spool.flushTimer = setInterval(() => spool.flushQuietly(), FLUSH_INTERVAL_MS);
    spool.flushTimer.unref?.();
    return spool;
  }

  /** Messages held. */
  get size(): number {
    return this.count;
  }

  /** Bytes held, on disk and pending. */
  get bytes(): number {
    return this.bytesOnDisk + this.pendingUsed - (this.segments[0]?.taken ?? 0);
  }

  get limitBytes(): number {
    return this.maxBytes;
  }

  /** Adds a message at the end; false (nothing written) when the spool is full or the disk fails. */
  append(message: RawMessage): boolean {
    if (this.closed) return false;
    // Most messages are ASCII: a character is a byte. The bound is kept as
    // well as that counts; the file sizes it is checked against are exact.
    if (this.bytesOnDisk + this.pendingUsed + LENGTH_BYTES + FIXED_BYTES + channelField(message).length + message.data.length > this.maxBytes) {
      return false;
    }
    try {
      this.appendUnbounded(message);
      return true;
    } catch (e) {
      const why = errorMessage(e);
      this.log.once(`spool-write:${why}`, `cannot write to the spool in ${this.dir}: ${why}; messages it cannot take are dropped and counted`);
      return false;
    }
  }

  /** The arrival time of the oldest message held, if any (reads ahead from disk). */
  oldestArrival(): number | null {
    if (this.count === 0) return null;
    if (this.readAheadHead >= this.readAhead.length) this.fill();
    return this.readAhead[this.readAheadHead]?.message.receivedAt ?? null;
  }

  /** Takes up to `max` messages, oldest first. */
  take(max: number): RawMessage[] {
    const out: RawMessage[] = [];
    while (out.length < max && this.count > 0) {
      if (this.readAheadHead >= this.readAhead.length && !this.fill()) break;
      const r = this.readAhead[this.readAheadHead++];
      if (!r) break;
      out.push(r.message);
      r.segment.taken = r.end;
      this.count--;
    }
    if (this.readAheadHead >= this.readAhead.length) {
      this.readAhead = [];
      this.readAheadHead = 0;
    }
    if (out.length > 0) {
      this.positionDirty = true;
      this.dropReadSegments();
      if (Date.now() - this.positionSavedAt >= POSITION_EVERY_MS) this.savePositionQuietly();
    }
    return out;
  }

  /**
   * Puts messages back before everything held (at shutdown: what was in
   * memory or being written is older than what is here). Not bounded by
   * maxBytes: they were held already, in memory.
   */
  prepend(messages: readonly RawMessage[]): void {
    if (messages.length === 0 || this.closed) return;
    const first = this.segments[0];
    if (this.count === 0 || !first) {
      for (const m of messages) this.appendUnbounded(m);
      return;
    }
    // What was read ahead goes back to its segment, to be read again after these.
    for (const r of this.readAhead.slice(this.readAheadHead)) r.segment.unread++;
    this.readAhead = [];
    this.readAheadHead = 0;
    this.closeReader();
    const segment: Segment = { n: first.n - 1, size: 0, unread: 0, taken: 0 };
    const fd = openSync(this.segmentPath(segment.n), "w");
    try {
      let buf = Buffer.allocUnsafe(2 * FLUSH_BYTES);
      let used = 0;
      for (const m of messages) {
        const worst = worstBytes(m);
        if (used + worst > buf.length) {
          writeAll(fd, buf, used);
          segment.size += used;
          used = 0;
          if (worst > buf.length) buf = Buffer.allocUnsafe(worst);
        }
        used += encode(m, buf, used);
        segment.unread++;
      }
      writeAll(fd, buf, used);
      segment.size += used;
    } finally {
      closeSync(fd);
    }
    this.segments.unshift(segment);
    this.bytesOnDisk += segment.size;
    this.count += segment.unread;
    this.positionDirty = true;
    this.savePositionQuietly();
  }

  /** Writes what is pending and where reading stands, and lets the directory go. */
  close(): void {
    if (this.closed) return;
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushQuietly();
    this.positionDirty = true;
    this.savePositionQuietly();
    this.closeReader();
    if (this.writer) closeSync(this.writer.fd);
    this.writer = null;
    this.closed = true;
    rmSync(join(this.dir, "owner.pid"), { force: true });
  }

  // ── writing ────────────────────────────────────────────────────────────

  private appendUnbounded(message: RawMessage) {
    const worst = worstBytes(message);
    if (this.pendingUsed + worst > this.pending.length) {
      this.flush();
      if (worst > this.pending.length) this.pending = Buffer.allocUnsafe(worst);
    }
    // After the flush: it may have closed the segment (pending bytes always
    // belong to the segment being written).
    const segment = this.writer?.segment ?? this.startSegment();
    this.pendingUsed += encode(message, this.pending, this.pendingUsed);
    segment.unread++;
    this.count++;
    if (this.pendingUsed >= FLUSH_BYTES) this.flush();
  }

  private startSegment(): Segment {
    const last = this.segments.at(-1);
    const segment: Segment = { n: last ? last.n + 1 : FIRST_SEGMENT, size: 0, unread: 0, taken: 0 };
    this.writer = { segment, fd: openSync(this.segmentPath(segment.n), "w") };
    this.segments.push(segment);
    return segment;
  }

  private flush() {
    if (!this.writer || this.pendingUsed === 0) return;
    const { segment, fd } = this.writer;
    writeAll(fd, this.pending, this.pendingUsed);
    segment.size += this.pendingUsed;
    this.bytesOnDisk += this.pendingUsed;
    this.pendingUsed = 0;
    // Grown for one large message: back to the usual size.
    if (this.pending.length > 2 * FLUSH_BYTES) this.pending = Buffer.allocUnsafe(2 * FLUSH_BYTES);
    // Cut here: the next message starts a new segment, and this one can be
    // deleted as soon as it is read.
    if (segment.size >= this.segmentBytes) {
      closeSync(fd);
      this.writer = null;
    }
  }

  private flushQuietly() {
    try {
      this.flush();
    } catch (e) {
      const why = errorMessage(e);
      this.log.once(`spool-flush:${why}`, `cannot write to the spool in ${this.dir}: ${why}`);
    }
    if (this.positionDirty && Date.now() - this.positionSavedAt >= POSITION_EVERY_MS) this.savePositionQuietly();
  }

  // ── reading ────────────────────────────────────────────────────────────

  /** Reads the next records from disk into readAhead (called when it is empty); false if there are none. */
  private fill(): boolean {
    for (;;) {
      const segment = this.segments[0];
      if (!segment) return false;
      if (this.writer?.segment === segment) this.flush();
      if (this.reading?.segment !== segment) {
        this.closeReader();
        this.reading = { segment, fd: openSync(this.segmentPath(segment.n), "r"), offset: segment.taken };
      }
      const r = this.reading;
      if (r.offset < segment.size) {
        try {
          if (this.readFrom(r)) return true;
        } catch (e) {
          this.loseRest(segment, errorMessage(e));
        }
        continue;
      }
      // Read to its end.
      if (segment.unread > 0) {
        this.loseRest(segment, "records counted past its end");
        continue;
      }
      if (this.writer?.segment === segment) return false;
      if (segment.taken < segment.size) return false;
      this.dropReadSegments();
      if (this.segments[0] === segment) return false;
    }
  }

  /** Parses the records from r.offset on (at least one, or throws); true if it read any. */
  private readFrom(r: { segment: Segment; fd: number; offset: number }): boolean {
    const available = r.segment.size - r.offset;
    let want = Math.min(READ_BYTES, available);
    let buf = Buffer.allocUnsafe(want);
    let got = readAt(r.fd, buf, want, r.offset);
    if (got >= LENGTH_BYTES) {
      const first = LENGTH_BYTES + buf.readUInt32LE(0);
      if (first > want) {
        // One record longer than a read: read it whole.
        if (first > available || first - LENGTH_BYTES > MAX_RECORD_BYTES) throw new Error(`a record of ${first} bytes where ${available} remain`);
        want = first;
        buf = Buffer.allocUnsafe(want);
        got = readAt(r.fd, buf, want, r.offset);
      }
    }
    let at = 0;
    while (at + LENGTH_BYTES <= got) {
      const length = buf.readUInt32LE(at);
      const end = at + LENGTH_BYTES + length;
      if (end > got) break;
      if (length < FIXED_BYTES || length > MAX_RECORD_BYTES) throw new Error(`a record of ${length} bytes`);
      this.readAhead.push({ message: decode(buf, at + LENGTH_BYTES, end), segment: r.segment, end: r.offset + end });
      r.segment.unread--;
      at = end;
    }
    if (at === 0) throw new Error(`an incomplete record at ${r.offset}`);
    r.offset += at;
    return true;
  }

  /** Deletes the segments read to their end and taken; the written one is kept (and reused). */
  private dropReadSegments() {
    for (;;) {
      const segment = this.segments[0];
      if (!segment || segment.unread > 0 || segment.taken < segment.size) return;
      if (this.readAhead[this.readAheadHead]?.segment === segment) return;
      if (this.writer?.segment === segment) {
        if (this.pendingUsed > 0) return;
        // All read: start the file over rather than let it grow.
        closeSync(this.writer.fd);
        this.writer = null;
      }
      if (this.reading?.segment === segment) this.closeReader();
      this.segments.shift();
      this.bytesOnDisk -= segment.size;
      rmSync(this.segmentPath(segment.n), { force: true });
    }
  }

  /** A segment that cannot be read further: its unread records are lost (counted, logged). */
  private loseRest(segment: Segment, why: string) {
    const lost = segment.unread;
    this.log.error(`spool segment ${this.segmentPath(segment.n)} cannot be read further (${why}): ${lost} messages in it are lost`);
    this.lost += lost;
    this.count -= lost;
    segment.unread = 0;
    segment.taken = segment.size;
    if (this.reading?.segment === segment) this.reading.offset = segment.size;
    this.dropReadSegments();
  }

  private closeReader() {
    if (this.reading) closeSync(this.reading.fd);
    this.reading = null;
  }

  // ── position and start-up ──────────────────────────────────────────────

  private savePositionQuietly() {
    if (!this.positionDirty) return;
    try {
      const taken: Record<string, number> = {};
      for (const s of this.segments) if (s.taken > 0) taken[String(s.n)] = s.taken;
      const tmp = join(this.dir, "position.json.tmp");
      writeFileSync(tmp, JSON.stringify({ taken }));
      renameSync(tmp, join(this.dir, "position.json"));
      this.positionDirty = false;
      this.positionSavedAt = Date.now();
    } catch (e) {
      const why = errorMessage(e);
      this.log.once(`spool-position:${why}`, `cannot record the spool's read position in ${this.dir}: ${why}`);
    }
  }

  private load() {
    mkdirSync(this.dir, { recursive: true });
    this.claim();
    const taken = this.readPosition();
    const numbers = readdirSync(this.dir)
      .map((f) => /^(\d+)\.seg$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const n of numbers) {
      const segment = this.scan(n, taken[String(n)] ?? 0);
      if (segment.unread === 0) {
        rmSync(this.segmentPath(n), { force: true });
        continue;
      }
      this.segments.push(segment);
      this.bytesOnDisk += segment.size;
      this.count += segment.unread;
    }
    if (this.count > 0) this.log.info(`spool in ${this.dir} holds ${this.count} messages from before; writing them first`);
  }

  /** Counts a segment's records from `from` on, and cuts off a last record a crash left half-written. */
  private scan(n: number, from: number): Segment {
    const fd = openSync(this.segmentPath(n), "r+");
    try {
      const size = fstatSync(fd).size;
      let at = Math.min(from, size);
      let unread = 0;
      // Hops from length to length through a window of the file.
      const window = Buffer.allocUnsafe(READ_BYTES);
      let windowStart = -1;
      let windowLength = 0;
      while (at + LENGTH_BYTES <= size) {
        if (windowStart < 0 || at + LENGTH_BYTES > windowStart + windowLength) {
          windowStart = at;
          windowLength = readAt(fd, window, Math.min(READ_BYTES, size - at), at);
        }
        const length = window.readUInt32LE(at - windowStart);
        if (length < FIXED_BYTES || length > MAX_RECORD_BYTES || at + LENGTH_BYTES + length > size) break;
        at += LENGTH_BYTES + length;
        unread++;
      }
      if (at < size) {
        this.log.warn(`spool segment ${this.segmentPath(n)}: ${size - at} bytes after its last whole record (a crash while writing) are cut off`);
        ftruncateSync(fd, at);
      }
      return { n, size: at, unread, taken: Math.min(from, at) };
    } finally {
      closeSync(fd);
    }
  }

  private readPosition(): Record<string, number> {
    const path = join(this.dir, "position.json");
    if (!existsSync(path)) return {};
    try {
      const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
      const taken = typeof parsed === "object" && parsed !== null && "taken" in parsed ? parsed.taken : null;
      const out: Record<string, number> = {};
      if (typeof taken === "object" && taken !== null) {
        for (const [k, v] of Object.entries(taken)) if (typeof v === "number" && v >= 0) out[k] = v;
      }
      return out;
    } catch {
      this.log.warn(`spool position ${path} is unreadable: reading every segment from its start (messages may be written twice, harmlessly)`);
      return {};
    }
  }

  /** One process per spool: a second collector on the same DATA_DIR would read and delete the first's segments. */
  private claim() {
    const path = join(this.dir, "owner.pid");
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(`process ${pid} uses the spool in ${this.dir} (two collectors with one DATA_DIR?)`);
      }
    }
    writeFileSync(path, String(process.pid));
  }

  private segmentPath(n: number): string {
    return join(this.dir, `${String(n).padStart(9, "0")}.seg`);
  }
}

function encode(m: RawMessage, buf: Buffer, at: number): number {
  const start = at;
  at += LENGTH_BYTES;
  buf.writeDoubleLE(m.receivedAt, at);
  buf.writeUInt8((m.stream === "result-backend" ? 1 : 0) | (m.contentType === undefined ? 0 : WITH_CONTENT_TYPE), at + 8);
  const channelBytes = buf.write(channelField(m), at + FIXED_BYTES, "utf8");
  buf.writeUInt32LE(channelBytes, at + 9);
  at += FIXED_BYTES + channelBytes;
  at += buf.write(m.data, at, "utf8");
  buf.writeUInt32LE(at - start - LENGTH_BYTES, start);
  return at - start;
}

/** The record between `start` (after its length) and `end`. */
function decode(buf: Buffer, start: number, end: number): RawMessage {
  const receivedAt = buf.readDoubleLE(start);
  const streamByte = buf.readUInt8(start + 8);
  const stream = STREAMS[streamByte & ~WITH_CONTENT_TYPE] ?? "events";
  const channelBytes = buf.readUInt32LE(start + 9);
  const channelEnd = start + FIXED_BYTES + channelBytes;
  if (channelEnd > end) throw new Error("a record whose channel overruns it");
  const field = buf.toString("utf8", start + FIXED_BYTES, channelEnd);
  const data = buf.toString("utf8", channelEnd, end);
  if (!(streamByte & WITH_CONTENT_TYPE)) return { stream, receivedAt, channel: field, data };
  const colon = field.indexOf(":");
  const length = Number(field.slice(0, colon));
  if (colon < 1 || !Number.isInteger(length) || colon + 1 + length > field.length) throw new Error("a record whose content type overruns it");
  return { stream, receivedAt, channel: field.slice(colon + 1 + length), contentType: field.slice(colon + 1, colon + 1 + length), data };
}

function writeAll(fd: number, buf: Buffer, length: number) {
  let done = 0;
  while (done < length) done += writeSync(fd, buf, done, length - done);
}

function readAt(fd: number, buf: Buffer, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, as another user.
    return e instanceof Error && "code" in e && e.code === "EPERM";
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
