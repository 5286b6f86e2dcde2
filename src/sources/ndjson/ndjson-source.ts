import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { createGunzip } from "node:zlib";
import type { DocumentSource, LineBatch, SourceItem, SourceProgress } from "../../documents/source-record.ts";
import { firstInvalidUtf8 } from "../../documents/utf8.ts";
import { CorruptGzipError, isZlibDataError } from "../corrupt-gzip-error.ts";

/** Lines longer than this cannot be a jsonb value anyway (its limit is 255 MB). */
const MAX_LINE_BYTES = 256 * 1024 * 1024;
/** Bytes read (or inflated) at a time; a batch of lines is at most about this much. */
const READ_BYTES = 1 << 20;
/** Compressed bytes handed to gunzip at a time. */
const GZIP_READ_BYTES = 1 << 16;

/** `ndjson:FILE` (also gzip, recognised by its magic bytes): one JSON record per line, streamed. */
export function ndjsonSource(path: string, options: { label?: string } = {}): DocumentSource {
  const file = basename(path);
  return {
    label: options.label ?? `ndjson:${path}`,
    defaultTable: file.replace(/(\.gz)?$/i, "").replace(/\.(ndjson|jsonl|json)$/i, ""),
    readLines: (progress) => readNdjsonLines(path, file, progress),
    read: async function* (progress) {
      for await (const batch of readNdjsonLines(path, file, progress)) {
        for (let i = 0; i < batch.count; i++) {
          const item = batch.item(i);
          if (item) yield item;
        }
      }
    },
  };
}

async function isGzip(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

async function* readNdjsonLines(
  path: string,
  file: string,
  progress?: (p: SourceProgress) => void,
): AsyncGenerator<LineBatch> {
  const totalBytes = (await stat(path)).size;
  const gzip = await isGzip(path);
  // gzip input goes in smaller pieces, so that a corrupt byte is located to within GZIP_READ_BYTES
  const stream = createReadStream(path, { highWaterMark: gzip ? GZIP_READ_BYTES : READ_BYTES });
  const gunzip = gzip ? createGunzip({ chunkSize: READ_BYTES }) : undefined;
  const input: AsyncIterable<Buffer> = gunzip ? stream.pipe(gunzip) : stream;
  const splitter = new LineSplitter(file);
  let carry: Buffer | undefined;
  try {
    for await (const chunk of input) {
      const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      const lastNewline = buffer.lastIndexOf(0x0a);
      if (lastNewline < 0) {
        carry = undefined;
        // the rest of a line already reported as too long
        if (splitter.skipUntilNewline) continue;
        if (buffer.length > MAX_LINE_BYTES) {
          yield splitter.tooLong();
          continue;
        }
        carry = buffer;
        continue;
      }
      carry = lastNewline + 1 < buffer.length ? Buffer.from(buffer.subarray(lastNewline + 1)) : undefined;
      yield splitter.split(buffer.subarray(0, lastNewline));
      progress?.({ files: 0, bytes: stream.bytesRead, totalBytes });
    }
    if (carry && carry.length > 0) yield splitter.split(carry);
    progress?.({ files: 1, bytes: totalBytes, totalBytes });
  } catch (error) {
    // zlib says only "incorrect data check": the file and where in it are what the user can act on
    if (gunzip && isZlibDataError(error))
      throw new CorruptGzipError(
        file,
        gunzip.bytesWritten,
        Math.min(gunzip.bytesWritten + GZIP_READ_BYTES, totalBytes),
        totalBytes,
        error,
      );
    throw error;
  } finally {
    stream.destroy();
  }
}

/**
 * Numbers lines and cuts complete lines (no trailing newline) into entries: byte ranges of valid
 * UTF-8 text, or problems (invalid UTF-8, a line too long). Empty lines are counted, not entries.
 */
class LineSplitter {
  skipUntilNewline = false;
  private lineNumber = 0;
  private first = true;

  constructor(private readonly file: string) {}

  /** A problem for the line now being read, whose bytes (over MAX_LINE_BYTES) are not kept. */
  tooLong(): LineBatch {
    const batch = new Batch(this.file, Buffer.alloc(0), 1);
    batch.addProblem(this.lineNumber + 1, {
      kind: "problem",
      file: this.file,
      location: `${this.file}:${this.lineNumber + 1}`,
      reason: `line longer than ${MAX_LINE_BYTES} bytes (larger than a jsonb value can be)`,
      raw: () => undefined,
      rawFormat: "ndjson-line",
      records: 1,
    });
    this.skipUntilNewline = true;
    return batch;
  }

  split(bytes: Buffer): LineBatch {
    const batch = new Batch(this.file, bytes, (bytes.length >> 9) + 16);
    const valid = isUtf8(bytes);
    let start = 0;
    for (;;) {
      let end = bytes.indexOf(0x0a, start);
      const last = end < 0;
      if (last) end = bytes.length;
      this.lineNumber++;
      let from = start;
      start = end + 1;
      if (this.first) {
        this.first = false;
        if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) from = 3;
      }
      if (this.skipUntilNewline) this.skipUntilNewline = false;
      else if (end > from) {
        if (valid || isUtf8(bytes.subarray(from, end))) batch.addText(this.lineNumber, from, end);
        else batch.addProblem(this.lineNumber, this.invalidUtf8(bytes.subarray(from, end)));
      }
      if (last) return batch;
    }
  }

  private invalidUtf8(lineBytes: Buffer): SourceItem {
    const offset = firstInvalidUtf8(lineBytes);
    const raw = Buffer.from(lineBytes);
    return {
      kind: "problem",
      file: this.file,
      location: `${this.file}:${this.lineNumber}`,
      reason: `invalid UTF-8 at byte ${offset + 1} of line ${this.lineNumber}`,
      raw: () => raw,
      rawFormat: "ndjson-line",
      records: 1,
    };
  }
}

class Batch implements LineBatch {
  count = 0;
  start: Int32Array;
  end: Int32Array;
  line: Int32Array;
  text: Uint8Array;
  private problems: Map<number, SourceItem> | undefined;

  constructor(
    readonly file: string,
    readonly bytes: Buffer,
    capacity: number,
  ) {
    this.start = new Int32Array(capacity);
    this.end = new Int32Array(capacity);
    this.line = new Int32Array(capacity);
    this.text = new Uint8Array(capacity);
  }

  /** A line of valid UTF-8, bytes[from, to) with its newline removed (and one carriage return). */
  addText(line: number, from: number, to: number): void {
    const textEnd = this.bytes[to - 1] === 0x0d ? to - 1 : to;
    if (textEnd === from) return;
    const i = this.add(line);
    this.start[i] = from;
    this.end[i] = textEnd;
    this.text[i] = 1;
  }

  addProblem(line: number, problem: SourceItem): void {
    const i = this.add(line);
    (this.problems ??= new Map()).set(i, problem);
  }

  item(i: number): SourceItem | undefined {
    if (this.text[i] !== 1) return this.problems?.get(i);
    const from = this.start[i]!;
    const to = this.end[i]!;
    // the carriage return the text left out is part of the line's raw bytes
    const rawEnd = this.bytes[to] === 0x0d ? to + 1 : to;
    const text = this.bytes.toString("utf8", from, to);
    if (text.trim() === "") return undefined;
    const lineNumber = this.line[i]!;
    const location = `${this.file}:${lineNumber}`;
    const bytes = this.bytes;
    const raw = () => Buffer.from(bytes.subarray(from, rawEnd));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return {
        kind: "problem",
        file: this.file,
        location,
        reason: `malformed JSON on line ${lineNumber}: ${(error as Error).message}`,
        raw,
        rawFormat: "ndjson-line",
        records: 1,
      };
    }
    return { kind: "record", value, text, file: this.file, location, raw, rawFormat: "ndjson-line" };
  }

  private add(line: number): number {
    if (this.count === this.start.length) {
      const grow = <T extends Int32Array | Uint8Array>(from: T, to: T): T => {
        to.set(from);
        return to;
      };
      const capacity = this.count * 2;
      this.start = grow(this.start, new Int32Array(capacity));
      this.end = grow(this.end, new Int32Array(capacity));
      this.line = grow(this.line, new Int32Array(capacity));
      this.text = grow(this.text, new Uint8Array(capacity));
    }
    this.line[this.count] = line;
    return this.count++;
  }
}
