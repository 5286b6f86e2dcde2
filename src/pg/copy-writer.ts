import { once } from "node:events";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { PgshiftError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "./quote.ts";

/** A value pgshift can write through COPY text format. Objects and arrays become JSON. */
export type CopyValue = string | number | bigint | boolean | Date | Uint8Array | null | undefined | object;

export class CopyValueError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("bad_copy_value", message, { details });
  }
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeText(text: string): string {
  if (text.includes("\u0000"))
    throw new CopyValueError("text contains a NUL character, which PostgreSQL text cannot store");
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (c) => ESCAPES[c]!) : text;
}

/** One value in COPY text format: `\N` for null, escaped text otherwise. */
export function encodeCopyValue(value: CopyValue): string {
  if (value === null || value === undefined) return "\\N";
  switch (typeof value) {
    case "string":
      return escapeText(value);
    case "number":
      if (Number.isNaN(value)) return "NaN";
      if (value === Number.POSITIVE_INFINITY) return "Infinity";
      if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
      return String(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "t" : "f";
    default:
      if (value instanceof Uint8Array)
        return `\\\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
      if (value instanceof Date) return value.toISOString();
      return escapeText(JSON.stringify(value));
  }
}

/** One row, tab-separated, newline-terminated. */
export function encodeCopyRow(values: readonly CopyValue[]): string {
  let line = "";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) line += "\t";
    line += encodeCopyValue(values[i]);
  }
  return `${line}\n`;
}

export interface CopyTarget {
  schema?: string;
  table: string;
  columns: readonly string[];
  /** COPY's data format (default text); binary streams carry BINARY_COPY_HEADER ... TRAILER (copy-buffer.ts). */
  format?: "text" | "binary";
}

export interface CopyOptions {
  /** Bytes buffered before each write to the server (large chunks: one write per row is ~40x slower). */
  chunkBytes?: number;
  /** Called after each chunk is handed to the server with the rows sent so far. */
  onProgress?: (rowsSent: number) => void;
}

/** The COPY statement for a target, identifiers quoted. */
export function copyStatement(target: CopyTarget): string {
  const columns = target.columns.map(quoteIdent).join(", ");
  const format = target.format === "binary" ? " with (format binary)" : "";
  return `copy ${quoteQualified(target.schema, target.table)} (${columns}) from stdin${format}`;
}

/** An open COPY ... FROM STDIN: pre-encoded text in, the server's row count out. */
export interface CopyStream {
  /** Sends COPY text; resolves when the socket can take more (backpressure), rejects if the COPY failed. */
  write(data: string | Uint8Array): Promise<void>;
  /** Finishes the COPY and returns the row count the server confirmed (its `COPY n` tag). */
  end(): Promise<number>;
  /** Abandons the COPY so the server rolls it back; waits until the stream has closed. */
  abort(error: Error): Promise<void>;
}

/** Starts `COPY target FROM STDIN` on a client. The one place pgshift drives pg-copy-streams. */
export function openCopy(client: pg.ClientBase, target: CopyTarget): CopyStream {
  const stream = client.query(copyFrom(copyStatement(target)));
  let failed: Error | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve);
    stream.on("error", (error: Error) => {
      failed = error;
      reject(error);
    });
  });
  finished.catch(() => undefined);
  return {
    async write(data) {
      if (failed) throw failed;
      if (!stream.write(data)) await Promise.race([once(stream, "drain"), finished]);
      if (failed) throw failed;
    },
    async end() {
      stream.end();
      await finished;
      return Number(stream.rowCount);
    },
    async abort(error) {
      stream.destroy(error);
      await finished.catch(() => undefined);
    },
  };
}

/**
 * Streams rows into `target` with COPY and returns the row count the server confirmed (its `COPY n` tag).
 * Memory stays bounded: at most one chunk is buffered, and writes wait for the socket to drain.
 */
export async function copyRows(
  client: pg.ClientBase,
  target: CopyTarget,
  rows: Iterable<readonly CopyValue[]> | AsyncIterable<readonly CopyValue[]>,
  options: CopyOptions = {},
): Promise<number> {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const copy = openCopy(client, target);
  let buffer = "";
  let sent = 0;
  let pending = 0;
  const flush = async () => {
    if (!buffer) return;
    const data = buffer;
    buffer = "";
    sent += pending;
    pending = 0;
    await copy.write(data);
    options.onProgress?.(sent);
  };
  try {
    for await (const row of rows as AsyncIterable<readonly CopyValue[]>) {
      buffer += encodeCopyRow(row);
      pending++;
      if (buffer.length >= chunkBytes) await flush();
    }
    await flush();
  } catch (error) {
    // Abort the COPY so the server rolls it back, then surface the original problem.
    await copy.abort(error as Error);
    throw error;
  }
  return copy.end();
}
