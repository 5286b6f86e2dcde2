import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { type Duplex, type Readable, Transform, type TransformCallback } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { parser } from "stream-json";
import pick from "stream-json/filters/pick.js";
import { formatPointer } from "../../documents/json-pointer.ts";
import type { DocumentSource, SourceItem, SourceProgress } from "../../documents/source-record.ts";
import { firstInvalidUtf8 } from "../../documents/utf8.ts";
import { ExactRecordText, type RecordText } from "./exact-record-text.ts";
import { describeParseError, recordsOfDocument } from "./json-records.ts";

/** Files up to this size are read whole (fast JSON.parse); larger ones are streamed with stream-json. */
export const WHOLE_FILE_LIMIT = 32 * 1024 * 1024;
/** A malformed file is quarantined byte-exact only up to this size; a larger one fails the import. */
export const QUARANTINE_FILE_LIMIT = 64 * 1024 * 1024;

/** `json:FILE`: one record, an array of records, or an envelope with records at `recordsPointer`. */
export function jsonFileSource(
  path: string,
  options: { recordsPointer?: readonly string[]; label?: string; wholeFileLimit?: number } = {},
): DocumentSource {
  const file = basename(path);
  return {
    label: options.label ?? `json:${path}`,
    defaultTable: file.replace(/\.json$/i, ""),
    read: async function* (progress) {
      const size = (await stat(path)).size;
      yield* readJsonFile(path, file, size, options.recordsPointer, progress, options.wholeFileLimit);
      progress?.({ files: 1, bytes: size, totalBytes: size });
    },
  };
}

/** Reads one JSON file: whole when small, streamed when large. */
export async function* readJsonFile(
  path: string,
  file: string,
  size: number,
  recordsPointer: readonly string[] | undefined,
  progress?: (p: SourceProgress) => void,
  wholeFileLimit = WHOLE_FILE_LIMIT,
): AsyncGenerator<SourceItem> {
  if (size > wholeFileLimit) {
    yield* streamJsonFile(path, file, size, recordsPointer, progress);
    return;
  }
  yield* parseJsonBytes(await readFile(path), file, recordsPointer);
}

/** The records of one small JSON file held in memory. */
export function* parseJsonBytes(
  bytes: Buffer,
  file: string,
  recordsPointer: readonly string[] | undefined,
): Generator<SourceItem> {
  if (!isUtf8(bytes)) {
    const offset = firstInvalidUtf8(bytes);
    const { line, column } = lineAndColumnOf(bytes, offset);
    yield fileProblem(file, `invalid UTF-8 at line ${line}, byte ${column} of ${file}`, bytes);
    return;
  }
  let text = bytes.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    yield fileProblem(file, `malformed JSON in ${file}: ${describeParseError(error, text)}`, bytes);
    return;
  }
  yield* recordsOfDocument(value, text, bytes, file, recordsPointer);
}

function fileProblem(file: string, reason: string, bytes: Uint8Array | undefined): SourceItem {
  return {
    kind: "problem",
    file,
    location: file,
    reason,
    raw: () => bytes,
    rawFormat: "json",
    records: 1,
  };
}

function lineAndColumnOf(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

async function firstSignificantByte(path: string): Promise<number | undefined> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    let i = 0;
    if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) i = 3;
    for (; i < bytesRead; i++) {
      const b = head[i]!;
      if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return b;
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Validates UTF-8 while decoding, and counts lines so that errors can say where they are. */
class Utf8Lines extends Transform {
  lines = 1;
  bytes = 0;
  invalidAt?: { line: number; byte: number };
  private readonly decoder = new StringDecoder("utf8");
  private carry: Buffer | undefined;

  constructor() {
    super({
      readableObjectMode: false,
      decodeStrings: true,
      highWaterMark: 1 << 16,
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    const buffer = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    const invalid = firstInvalidUtf8(buffer, true);
    if (invalid >= 0) {
      const before = buffer.subarray(0, invalid);
      let line = this.lines;
      let lineStart = -1;
      for (let i = 0; i < before.length; i++)
        if (before[i] === 0x0a) {
          line++;
          lineStart = i;
        }
      this.invalidAt = { line, byte: this.bytes + invalid + 1 };
      callback(
        new Error(
          `invalid UTF-8 at line ${line}, byte ${invalid - lineStart} of that line (offset ${this.invalidAt.byte})`,
        ),
      );
      return;
    }
    // keep an incomplete trailing sequence for the next chunk (the decoder does too; we validate it then)
    let keep = 0;
    for (let back = 1; back <= 3 && back <= buffer.length; back++) {
      const b = buffer[buffer.length - back]!;
      if ((b & 0xc0) === 0x80) continue;
      if (b >= 0xc0) {
        const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (need > back) keep = back;
      }
      break;
    }
    const complete = keep ? buffer.subarray(0, buffer.length - keep) : buffer;
    this.carry = keep ? Buffer.from(buffer.subarray(buffer.length - keep)) : undefined;
    for (let i = complete.indexOf(0x0a); i >= 0; i = complete.indexOf(0x0a, i + 1)) this.lines++;
    this.bytes += complete.length;
    callback(null, this.decoder.write(complete));
  }

  override _flush(callback: TransformCallback) {
    if (this.carry && this.carry.length > 0) {
      callback(
        new Error(`invalid UTF-8 at the end of the file (offset ${this.bytes + 1}): truncated sequence`),
      );
      return;
    }
    callback(null, this.decoder.end());
  }
}

/**
 * Streams a large JSON file with stream-json: elements of the top-level array, or of the array at
 * `recordsPointer`, one at a time (memory bounded by the largest record), each with its JSON text as the
 * source wrote its numbers (ExactRecordText).
 */
export async function* streamJsonFile(
  path: string,
  file: string,
  size: number,
  recordsPointer: readonly string[] | undefined,
  progress?: (p: SourceProgress) => void,
): AsyncGenerator<SourceItem> {
  const first = await firstSignificantByte(path);
  const pointer = recordsPointer ?? [];
  const wholeObject = pointer.length === 0 && first === 0x7b;
  // small chunks: a syntax error loses at most the records parsed from its chunk
  const input = createReadStream(path, { highWaterMark: 1 << 14 });
  const lines = new Utf8Lines();
  const stages: (Readable | Duplex)[] = [input, lines, parser.asStream()];
  if (pointer.length > 0) {
    stages.push(
      pick.asStream({
        filter: (stack) =>
          stack.length === pointer.length && stack.every((key, i) => String(key) === pointer[i]),
        once: true,
      }),
    );
  }
  stages.push(new ExactRecordText(wholeObject));
  // An error upstream ends the next stage instead of destroying the chain, so that the records
  // assembled before the error still arrive; the error is reported after them.
  let failure: Error | undefined;
  for (let i = 0; i < stages.length - 1; i++) {
    const stage = stages[i]!;
    const next = stages[i + 1] as Duplex;
    stage.on("error", (error: Error) => {
      failure ??= error;
      stage.unpipe(next);
      next.end();
    });
    stage.pipe(next);
  }
  const output = stages[stages.length - 1] as Readable;
  let nextIndex = 0;
  let lastReport = 0;
  try {
    for await (const item of output as AsyncIterable<RecordText>) {
      // the record's text has the source's digits; JSON.parse of one record (not a recursive assembler)
      const text = item.text;
      const value: unknown = JSON.parse(text);
      const raw = () => Buffer.from(text, "utf8");
      if (wholeObject) {
        yield { kind: "record", value, text, file, location: file, raw, rawFormat: "json" };
        continue;
      }
      const index = item.index;
      nextIndex = index + 1;
      yield {
        kind: "record",
        value,
        text,
        file,
        location: `${file}:${formatPointer([...pointer, index])}`,
        raw,
        rawFormat: "json",
      };
      if (lines.bytes - lastReport > 1 << 20) {
        lastReport = lines.bytes;
        progress?.({ files: 0, bytes: lines.bytes, totalBytes: size });
      }
    }
  } catch (error) {
    failure ??= error as Error;
  } finally {
    for (const stage of stages) stage.destroy();
  }
  if (failure) {
    const where = wholeObject
      ? ""
      : `; records before ${formatPointer([...pointer, nextIndex])} were loaded, the rest of the file was not`;
    const reason = lines.invalidAt
      ? `${failure.message} of ${file}${where}`
      : `malformed JSON in ${file} near line ${lines.lines}: ${failure.message}${where}`;
    const bytes = size <= QUARANTINE_FILE_LIMIT ? await readFile(path) : undefined;
    yield { ...fileProblem(file, reason, bytes), location: `${file}:${lines.lines}` };
  }
  progress?.({ files: 0, bytes: size, totalBytes: size });
}
