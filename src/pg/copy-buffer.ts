import { type CopyValue, CopyValueError, encodeCopyValue } from "./copy-writer.ts";

/**
 * COPY rows encoded straight into Buffers, for loaders that move a lot of bytes: a row is appended
 * field by field (no per-row strings or arrays), a large field can be copied from the input bytes
 * as-is, and `take()` hands over a chunk ready for `CopyStream.write`. Two formats: COPY text (any
 * column type) and COPY binary (fewer server cycles: no escapes to find, no text to split; for the
 * types in BINARY_TYPES).
 */
export interface CopyBuffer {
  readonly format: "text" | "binary";
  /** Bytes waiting to be taken. */
  readonly size: number;
  /** Rows waiting to be taken. */
  readonly rows: number;
  beginRow(fields: number): void;
  /** One field: a value as encodeCopyValue takes it, for a column of `type`. */
  value(value: CopyValue, type: string): void;
  /**
   * One jsonb field whose JSON text is bytes[start, end) (valid UTF-8, valid JSON, no NUL).
   * `escapes`: the text may hold a backslash, tab, newline or carriage return (text format escapes them).
   */
  jsonBytes(bytes: Uint8Array, start: number, end: number, escapes: boolean): void;
  endRow(): void;
  /** The rows so far, as one chunk; the buffer starts over empty. */
  take(): Buffer;
  /** Forgets the rows of the row begun last (a record that turned out not to load). */
  dropRow(): void;
}

/** Column types COPY binary can carry here; a table with any other loaded type uses COPY text. */
export const BINARY_TYPES: ReadonlySet<string> = new Set(["text", "jsonb", "bigint", "integer", "boolean"]);

/** The signature and header every COPY binary stream starts with (no OIDs, no extension). */
export const BINARY_COPY_HEADER: Buffer = Buffer.concat([
  Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"),
  Buffer.alloc(8),
]);
/** The end-of-data marker of COPY binary (a field count of -1). */
export const BINARY_COPY_TRAILER: Buffer = Buffer.from([0xff, 0xff]);

const INITIAL_BYTES = 1 << 20;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

abstract class GrowingBuffer {
  protected buffer: Buffer;
  protected length = 0;
  protected rowStart = 0;
  rows = 0;

  constructor(initialBytes = INITIAL_BYTES) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  get size(): number {
    return this.length;
  }

  protected ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  protected string(text: string): void {
    this.ensure(text.length * 3);
    this.length += this.buffer.write(text, this.length);
  }

  protected bytes(source: Uint8Array, start: number, end: number): void {
    this.ensure(end - start);
    this.buffer.set(source.subarray(start, end), this.length);
    this.length += end - start;
  }

  dropRow(): void {
    this.length = this.rowStart;
  }

  take(): Buffer {
    // the chunk goes to a socket that may hold it a while: hand over this buffer, start a new one
    const chunk = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.allocUnsafe(Math.max(INITIAL_BYTES, this.buffer.length));
    this.length = 0;
    this.rowStart = 0;
    this.rows = 0;
    return chunk;
  }
}

/** COPY text format: tab-separated, newline-terminated, `\N` for null, backslash escapes. */
export class TextCopyBuffer extends GrowingBuffer implements CopyBuffer {
  readonly format = "text" as const;
  private fieldsWritten = 0;

  beginRow(_fields: number): void {
    this.rowStart = this.length;
    this.fieldsWritten = 0;
  }

  private separator(): void {
    if (this.fieldsWritten++ > 0) {
      this.ensure(1);
      this.buffer[this.length++] = 0x09;
    }
  }

  value(value: CopyValue, _type: string): void {
    this.separator();
    this.string(encodeCopyValue(value));
  }

  jsonBytes(bytes: Uint8Array, start: number, end: number, escapes: boolean): void {
    this.separator();
    if (!escapes) {
      this.bytes(bytes, start, end);
      return;
    }
    this.ensure(2 * (end - start));
    const out = this.buffer;
    let at = this.length;
    for (let i = start; i < end; i++) {
      const c = bytes[i]!;
      if (c === 0x5c) {
        out[at++] = 0x5c;
        out[at++] = 0x5c;
      } else if (c === 0x09 || c === 0x0a || c === 0x0d) {
        out[at++] = 0x5c;
        out[at++] = c === 0x09 ? 0x74 : c === 0x0a ? 0x6e : 0x72;
      } else out[at++] = c;
    }
    this.length = at;
  }

  endRow(): void {
    this.ensure(1);
    this.buffer[this.length++] = 0x0a;
    this.rows++;
  }
}

/**
 * COPY binary format rows (the stream itself must start with BINARY_COPY_HEADER and end with
 * BINARY_COPY_TRAILER; see openCopy's `format: "binary"`). Each field is a 4-byte length and the
 * type's binary representation: text as UTF-8, jsonb as version 1 + JSON text, int4/int8 big-endian,
 * boolean as one byte.
 */
export class BinaryCopyBuffer extends GrowingBuffer implements CopyBuffer {
  readonly format = "binary" as const;

  beginRow(fields: number): void {
    this.rowStart = this.length;
    this.ensure(2);
    this.length = this.buffer.writeInt16BE(fields, this.length);
  }

  value(value: CopyValue, type: string): void {
    if (value === null || value === undefined) {
      this.ensure(4);
      this.length = this.buffer.writeInt32BE(-1, this.length);
      return;
    }
    switch (type) {
      case "text":
      case "jsonb": {
        // the same text COPY's text format would carry, unescaped
        const text =
          typeof value === "string"
            ? noNul(value)
            : encodeCopyValue(value).replace(/\\[\\nrt]/g, (e) => UNESCAPE[e]!);
        const lengthAt = this.length;
        this.ensure(5);
        this.length += 4;
        if (type === "jsonb") this.buffer[this.length++] = 1;
        this.string(text);
        this.buffer.writeInt32BE(this.length - lengthAt - 4, lengthAt);
        return;
      }
      case "bigint": {
        this.ensure(12);
        this.length = this.buffer.writeInt32BE(8, this.length);
        this.length = this.buffer.writeBigInt64BE(BigInt(value as string | number | bigint), this.length);
        return;
      }
      case "integer": {
        const n = Number(value);
        if (!Number.isInteger(n) || n < INT32_MIN || n > INT32_MAX)
          throw new CopyValueError(`${String(value)} is not an integer`);
        this.ensure(8);
        this.length = this.buffer.writeInt32BE(4, this.length);
        this.length = this.buffer.writeInt32BE(n, this.length);
        return;
      }
      case "boolean": {
        if (typeof value !== "boolean") throw new CopyValueError(`${String(value)} is not a boolean`);
        this.ensure(5);
        this.length = this.buffer.writeInt32BE(1, this.length);
        this.buffer[this.length++] = value ? 1 : 0;
        return;
      }
      default:
        throw new CopyValueError(`COPY binary does not carry ${type} here; use COPY text`);
    }
  }

  jsonBytes(bytes: Uint8Array, start: number, end: number, _escapes: boolean): void {
    this.ensure(5 + end - start);
    this.length = this.buffer.writeInt32BE(end - start + 1, this.length);
    this.buffer[this.length++] = 1;
    this.bytes(bytes, start, end);
  }

  endRow(): void {
    this.rows++;
  }
}

const UNESCAPE: Record<string, string> = { "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t" };

function noNul(text: string): string {
  if (text.includes("\u0000"))
    throw new CopyValueError("text contains a NUL character, which PostgreSQL text cannot store");
  return text;
}

/** A COPY buffer for columns of these types: binary when every type allows it, else text. */
export function copyBufferFor(types: readonly string[]): CopyBuffer {
  return types.every((type) => BINARY_TYPES.has(type)) ? new BinaryCopyBuffer() : new TextCopyBuffer();
}
