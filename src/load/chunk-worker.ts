/**
 * Worker thread entry: scans tables and encodes chunks (SQLite rows -> COPY text) off the main thread, so that reading
 * and encoding use more than one core while the main thread only feeds COPY streams. Flow control:
 * at most CREDITS pieces in flight; the main thread returns a credit when a piece was written.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { SqliteTable } from "../sources/sqlite/sqlite-catalog.ts";
import { openSqlite, type RowRange } from "../sources/sqlite/sqlite-rows.ts";
import { scanTable, type TableStats } from "../sources/sqlite/sqlite-scan.ts";
import { type ChunkJob, encodeChunk } from "./chunk-encoder.ts";

export const CREDITS = 3;

export type WorkerRequest =
  | { type: "chunk"; id: number; job: ChunkJob }
  | { type: "credit"; id: number }
  | { type: "scan"; id: number; table: SqliteTable; range?: RowRange };
export type WorkerReply =
  | { type: "scanned"; id: number; stats: TableStats }
  | { type: "data"; id: number; bytes: Uint8Array; rowsRead: number }
  | {
      type: "done";
      id: number;
      rowsRead: number;
      conversions: number[];
      quarantined: {
        location: string;
        column: string;
        reason: string;
        raw: Uint8Array;
      }[];
    }
  | {
      type: "error";
      id: number;
      code: string;
      message: string;
      details: Record<string, unknown>;
    };

const port = parentPort;
if (port) {
  const db = openSqlite((workerData as { path: string }).path);
  const encoder = new TextEncoder();
  let credits = CREDITS;
  let waiting: (() => void) | undefined;
  port.on("message", (message: WorkerRequest) => {
    if (message.type === "credit") {
      credits++;
      const wake = waiting;
      waiting = undefined;
      wake?.();
      return;
    }
    if (message.type === "scan") {
      try {
        port.postMessage({
          type: "scanned",
          id: message.id,
          stats: scanTable(db, message.table, message.range),
        } satisfies WorkerReply);
      } catch (error) {
        const e = error as Error & { code?: string };
        port.postMessage({
          type: "error",
          id: message.id,
          code: e.code ?? "internal",
          message: e.message,
          details: {},
        } satisfies WorkerReply);
      }
      return;
    }
    credits = CREDITS;
    const { id, job } = message;
    encodeChunk(db, job, async (data, rowsRead) => {
      // Only a buffer that owns its whole memory can be transferred.
      const bytes =
        typeof data === "string"
          ? encoder.encode(data)
          : data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
            ? data
            : new Uint8Array(data);
      credits--;
      port.postMessage({ type: "data", id, bytes, rowsRead } satisfies WorkerReply, [
        bytes.buffer as ArrayBuffer,
      ]);
      if (credits <= 0) await new Promise<void>((resolve) => (waiting = resolve));
    }).then(
      (output) => {
        port.postMessage({ type: "done", id, ...output } satisfies WorkerReply);
      },
      (error: Error & { code?: string; details?: Record<string, unknown> }) => {
        port.postMessage({
          type: "error",
          id,
          code: error.code ?? "internal",
          message: error.message,
          details: error.details ?? {},
        } satisfies WorkerReply);
      },
    );
  });
}
