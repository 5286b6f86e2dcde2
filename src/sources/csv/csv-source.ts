import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { createGunzip } from "node:zlib";
import { parse } from "csv-parse";
import type { DocumentSource, SourceItem, SourceProgress } from "../../documents/source-record.ts";
import { firstInvalidUtf8 } from "../../documents/utf8.ts";
import { UsageError } from "../../errors.ts";
import { CorruptGzipError, isZlibDataError } from "../corrupt-gzip-error.ts";

/** Compressed bytes handed to gunzip at a time: a corrupt byte is located to within this many. */
const GZIP_READ_BYTES = 1 << 16;

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

export interface CsvOptions {
  /** Field delimiter, one character (default ","). "\t" or "tab" for TSV. */
  delimiter?: string;
  /** utf8 (default, validated), latin1 / iso-8859-1, windows-1252, utf16le. */
  encoding?: string;
  /**
   * What an unquoted empty field (`a,,b`) is: "null" (default) or "empty" (an empty string). A quoted
   * empty field (`a,"",b`) is always an empty string, as in PostgreSQL's COPY ... CSV.
   */
  emptyAs?: EmptyAs;
  label?: string;
}

export type EmptyAs = "null" | "empty";
export const EMPTY_AS: readonly EmptyAs[] = ["null", "empty"];

const SINGLE_BYTE = new Set([
  "latin1",
  "iso-8859-1",
  "iso8859-1",
  "windows-1252",
  "cp1252",
  "ascii",
  "us-ascii",
]);

/**
 * `csv:FILE`: the first row names the columns; each further row is a record {column: text | null}. An
 * unquoted empty field is null (or "" with emptyAs "empty"); a quoted `""` is "". Quoted fields may
 * span lines.
 */
export function csvSource(path: string, options: CsvOptions = {}): DocumentSource {
  const file = basename(path);
  const encoding = (options.encoding ?? "utf8")
    .toLowerCase()
    .replace(/^utf-8$/, "utf8")
    .replace(/^utf-16le$/, "utf16le");
  if (encoding !== "utf8" && encoding !== "utf16le" && !SINGLE_BYTE.has(encoding)) {
    throw new UsageError(
      `unsupported CSV encoding "${options.encoding}"; use utf8, latin1, windows-1252 or utf16le`,
    );
  }
  let delimiter = options.delimiter ?? ",";
  if (delimiter === "tab" || delimiter === "\\t") delimiter = "\t";
  if ([...delimiter].length !== 1)
    throw new UsageError(`--delimiter must be one character, got "${delimiter}"`);
  const emptyAs = options.emptyAs ?? "null";
  if (!EMPTY_AS.includes(emptyAs))
    throw new UsageError(`--empty-as must be null or empty, not "${String(emptyAs)}"`);
  return {
    label: options.label ?? `csv:${path}`,
    defaultTable: file.replace(/(\.gz)?$/i, "").replace(/\.(csv|tsv|txt)$/i, ""),
    read: (progress) => readCsv(path, file, delimiter, encoding, emptyAs, progress),
  };
}

function uniqueHeaders(fields: string[]): string[] {
  const seen = new Map<string, number>();
  return fields.map((raw, i) => {
    const base = raw.trim() === "" ? `column_${i + 1}` : raw.trim();
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    return count === 1 ? base : `${base}_${count}`;
  });
}

async function* readCsv(
  path: string,
  file: string,
  delimiter: string,
  encoding: string,
  emptyAs: EmptyAs,
  progress?: (p: SourceProgress) => void,
): AsyncGenerator<SourceItem> {
  const totalBytes = (await stat(path)).size;
  // a .csv.gz (recognised by its magic bytes, like NDJSON) is inflated on the way in
  const gunzip = (await isGzip(path)) ? createGunzip({ chunkSize: 1 << 20 }) : undefined;
  const source = createReadStream(path, { highWaterMark: gunzip ? GZIP_READ_BYTES : 1 << 20 });
  const input = gunzip ? source.pipe(gunzip) : source;
  if (gunzip) source.on("error", (error) => gunzip.destroy(error));
  const utf16 = encoding === "utf16le";
  const latin1 = SINGLE_BYTE.has(encoding) && !["windows-1252", "cp1252"].includes(encoding);
  const decoder = ["windows-1252", "cp1252"].includes(encoding) ? new TextDecoder("windows-1252") : undefined;
  // Parse as latin1 (one char per byte, lossless), then decode each field from its original bytes:
  // invalid UTF-8 is found per field instead of being replaced silently.
  const parser = parse({
    delimiter: utf16 ? delimiter : Buffer.from(delimiter, "utf8").toString("latin1"),
    encoding: utf16 ? "utf16le" : "latin1",
    bom: true,
    raw: true,
    info: true,
    relax_column_count: true,
    skip_empty_lines: true,
    // the one place a quoted "" and an unquoted empty field differ
    cast: (value, context) => (value === "" && !context.quoting && emptyAs === "null" ? null : value),
  });
  input.pipe(parser);
  input.on("error", (error: Error) => parser.destroy(error));
  let headers: string[] | undefined;
  let previousLines = 0;
  let lastReport = 0;
  try {
    for await (const item of parser as AsyncIterable<{
      record: (string | null)[];
      raw: string;
      info: { lines: number; bytes: number };
    }>) {
      const line = previousLines + 1;
      previousLines = item.info.lines;
      const rawBytes = Buffer.from(item.raw, utf16 ? "utf16le" : "latin1");
      const raw = () => rawBytes.subarray(0, rawBytes.length - trailingNewline(rawBytes, utf16));
      const location = `${file}:${line}`;
      const fields: (string | null)[] = [];
      let invalid: string | undefined;
      for (let i = 0; i < item.record.length; i++) {
        const text = item.record[i]!;
        if (text === null || utf16 || latin1) {
          fields.push(text);
          continue;
        }
        const field = Buffer.from(text, "latin1");
        if (decoder) fields.push(decoder.decode(field));
        else if (isUtf8(field)) fields.push(field.toString("utf8"));
        else {
          invalid ??= `invalid UTF-8 in field ${i + 1}${headers ? ` (${headers[i] ?? "extra"})` : ""} at line ${line}, byte ${firstInvalidUtf8(field) + 1} of the field`;
          fields.push("");
        }
      }
      if (!headers) {
        if (invalid) throw new UsageError(`${file}: the header row has ${invalid}; pass --encoding`);
        headers = uniqueHeaders(fields.map((f) => f ?? ""));
        continue;
      }
      if (invalid) {
        yield {
          kind: "problem",
          file,
          location,
          reason: invalid,
          raw,
          rawFormat: "csv-line",
          records: 1,
        };
        continue;
      }
      if (fields.length !== headers.length) {
        yield {
          kind: "problem",
          file,
          location,
          reason: `line ${line} has ${fields.length} fields, the header has ${headers.length}`,
          raw,
          rawFormat: "csv-line",
          records: 1,
        };
        continue;
      }
      const value: Record<string, string | null> = {};
      for (let i = 0; i < headers.length; i++) value[headers[i]!] = fields[i]!;
      yield {
        kind: "record",
        value,
        file,
        location,
        raw,
        rawFormat: "csv-line",
      };
      if (item.info.bytes - lastReport > 1 << 20) {
        lastReport = item.info.bytes;
        progress?.({ files: 0, bytes: gunzip ? source.bytesRead : item.info.bytes, totalBytes });
      }
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (gunzip && isZlibDataError(error))
      throw new CorruptGzipError(
        file,
        gunzip.bytesWritten,
        Math.min(gunzip.bytesWritten + GZIP_READ_BYTES, totalBytes),
        totalBytes,
        error,
      );
    const message = (error as Error).message;
    yield {
      kind: "problem",
      file,
      location: `${file}:${previousLines + 1}`,
      reason: `malformed CSV in ${file} after line ${previousLines}: ${message}; the rest of the file was not read`,
      raw: () => undefined,
      rawFormat: "csv-line",
      records: 1,
    };
  } finally {
    input.destroy();
    source.destroy();
  }
  progress?.({ files: 1, bytes: totalBytes, totalBytes });
}

function trailingNewline(bytes: Buffer, utf16 = false): number {
  if (utf16) {
    const end = bytes.toString("utf16le");
    return end.endsWith("\r\n") ? 4 : end.endsWith("\n") || end.endsWith("\r") ? 2 : 0;
  }
  if (bytes.length >= 2 && bytes[bytes.length - 2] === 0x0d && bytes[bytes.length - 1] === 0x0a) return 2;
  if (bytes.length >= 1 && (bytes[bytes.length - 1] === 0x0a || bytes[bytes.length - 1] === 0x0d)) return 1;
  return 0;
}
