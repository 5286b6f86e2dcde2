import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { createGunzip } from "node:zlib";
import type { DocumentSource, SourceItem, SourceProgress } from "../../documents/source-record.ts";
import { firstInvalidUtf8 } from "../../documents/utf8.ts";

/** Lines longer than this cannot be a jsonb value anyway (its limit is 255 MB). */
const MAX_LINE_BYTES = 256 * 1024 * 1024;

/** `ndjson:FILE` (also gzip, recognised by its magic bytes): one JSON record per line, streamed. */
export function ndjsonSource(path: string, options: { label?: string } = {}): DocumentSource {
  const file = basename(path);
  return {
    label: options.label ?? `ndjson:${path}`,
    defaultTable: file.replace(/(\.gz)?$/i, "").replace(/\.(ndjson|jsonl|json)$/i, ""),
    read: (progress) => readNdjson(path, file, progress),
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

async function* readNdjson(
  path: string,
  file: string,
  progress?: (p: SourceProgress) => void,
): AsyncGenerator<SourceItem> {
  const totalBytes = (await stat(path)).size;
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  const input: AsyncIterable<Buffer> = (await isGzip(path)) ? stream.pipe(createGunzip()) : stream;
  let carry: Buffer | undefined;
  let lineNumber = 0;
  const lines = new LineSplitter(file);
  try {
    for await (const chunk of input) {
      const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      const lastNewline = buffer.lastIndexOf(0x0a);
      if (lastNewline < 0) {
        if (buffer.length > MAX_LINE_BYTES) {
          yield tooLong(file, lineNumber + 1);
          carry = undefined;
          lines.skipUntilNewline = true;
          continue;
        }
        carry = buffer;
        continue;
      }
      const complete = buffer.subarray(0, lastNewline);
      carry = lastNewline + 1 < buffer.length ? Buffer.from(buffer.subarray(lastNewline + 1)) : undefined;
      for (const item of lines.split(complete, lineNumber)) yield item;
      lineNumber = lines.lineNumber;
      progress?.({ files: 0, bytes: stream.bytesRead, totalBytes });
    }
    if (carry && carry.length > 0) {
      for (const item of lines.split(carry, lineNumber)) yield item;
    }
    progress?.({ files: 1, bytes: totalBytes, totalBytes });
  } finally {
    stream.destroy();
  }
}

function tooLong(file: string, line: number): SourceItem {
  return {
    kind: "problem",
    file,
    location: `${file}:${line}`,
    reason: `line longer than ${MAX_LINE_BYTES} bytes (larger than a jsonb value can be)`,
    raw: () => undefined,
    rawFormat: "ndjson-line",
    records: 1,
  };
}

/** Splits complete lines (no trailing newline) into records and problems, numbering lines. */
class LineSplitter {
  lineNumber = 0;
  skipUntilNewline = false;
  private first = true;

  constructor(private readonly file: string) {}

  *split(bytes: Buffer, startLine: number): Generator<SourceItem> {
    this.lineNumber = startLine;
    if (isUtf8(bytes)) {
      let text = bytes.toString("utf8");
      if (this.first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
      let start = 0;
      while (start <= text.length) {
        let end = text.indexOf("\n", start);
        if (end < 0) end = text.length;
        const line = text.slice(start, end);
        start = end + 1;
        this.lineNumber++;
        if (this.skipUntilNewline) {
          this.skipUntilNewline = false;
          continue;
        }
        const item = this.parseLine(line);
        if (item) yield item;
      }
      return;
    }
    this.first = false;
    let start = 0;
    while (start <= bytes.length) {
      let end = bytes.indexOf(0x0a, start);
      if (end < 0) end = bytes.length;
      const lineBytes = bytes.subarray(start, end);
      start = end + 1;
      this.lineNumber++;
      if (this.skipUntilNewline) {
        this.skipUntilNewline = false;
        continue;
      }
      if (isUtf8(lineBytes)) {
        const item = this.parseLine(lineBytes.toString("utf8"));
        if (item) yield item;
      } else {
        const offset = firstInvalidUtf8(lineBytes);
        const raw = Buffer.from(lineBytes);
        yield {
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
  }

  private parseLine(line: string): SourceItem | undefined {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text.trim() === "") return undefined;
    const location = `${this.file}:${this.lineNumber}`;
    const raw = () => Buffer.from(line, "utf8");
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return {
        kind: "problem",
        file: this.file,
        location,
        reason: `malformed JSON on line ${this.lineNumber}: ${(error as Error).message}`,
        raw,
        rawFormat: "ndjson-line",
        records: 1,
      };
    }
    return {
      kind: "record",
      value,
      text,
      file: this.file,
      location,
      raw,
      rawFormat: "ndjson-line",
    };
  }
}
