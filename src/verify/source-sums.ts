import { createHash, type Hash } from "node:crypto";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { recordText } from "./canonical.ts";
import { type ChunkStrategy, hashChunk, inSample, md5, rangeChunk, sampleThreshold } from "./chunking.ts";
import type { CanonicalRow, SourceTableReader } from "./source-reader.ts";
import type { ChunkSums } from "./target-side.ts";
import type { VerifyTable } from "./types.ts";

/**
 * The source side's per-chunk checksums: canonical row text, md5, chunk placement, sums. Runs in
 * the verifying process or in a worker thread (source-worker.ts), with the same code.
 */

const PROGRESS_EVERY = 16_384;
const INTEGER = /^-?\d+$/;
const TWO_32 = 4294967296;

/** A sum modulo 2^32 (possibly negative) as 8 hex digits of its unsigned value. */
function uint32Hex(sum: number): string {
  return (((sum % TWO_32) + TWO_32) % TWO_32).toString(16).padStart(8, "0");
}

export interface SourceAggregate {
  chunks: ChunkSums;
  rows: number;
}

/** How one side's rows map to chunks, keys and the sample. */
export class RowPlacement {
  readonly keyIndexes: number[];
  private readonly threshold?: number;
  private readonly width: number;
  private lastChunk = Number.NaN;
  private lastChunkId = "";

  constructor(
    table: VerifyTable,
    readonly strategy: ChunkStrategy,
    sample: number | undefined,
  ) {
    this.keyIndexes = table.key.map((k) => table.columns.findIndex((c) => c.name === k));
    if (sample !== undefined) this.threshold = sampleThreshold(sample);
    this.width = strategy.kind === "key-range" ? 2 ** strategy.shift : 1;
  }

  keyText(fields: CanonicalRow, rowText: string): string {
    if (this.keyIndexes.length === 0) return rowText;
    return recordText(this.keyIndexes.map((i) => fields[i] ?? null));
  }

  /** The row's chunk, or undefined when the sample leaves it out. */
  place(fields: CanonicalRow, rowText: string, rowDigest?: Buffer): string | undefined {
    let identityDigest: Buffer | undefined;
    if (this.keyIndexes.length === 0) identityDigest = rowDigest ?? md5(rowText);
    else if (this.threshold !== undefined || this.strategy.kind !== "key-range")
      identityDigest = md5(this.keyText(fields, rowText));
    if (this.threshold !== undefined && !inSample(identityDigest!, this.threshold)) return undefined;
    if (this.strategy.kind === "key-range") {
      const key = fields[this.keyIndexes[0]!];
      if (key === null || key === undefined || !INTEGER.test(key)) return "invalid";
      if (key.length <= 15) {
        // Rows mostly arrive in key order: reuse the previous chunk's id instead of a new string.
        const n = Math.floor(Number(key) / this.width);
        if (n !== this.lastChunk) {
          this.lastChunk = n;
          this.lastChunkId = String(n);
        }
        return this.lastChunkId;
      }
      return rangeChunk(key, this.strategy.shift);
    }
    return hashChunk(identityDigest!, this.strategy.buckets);
  }
}

/**
 * Calls `fn` for every row. Sync sources (SQLite) yield to the event loop between batches, so that
 * other tables, the target's queries and progress keep moving.
 */
export async function forEachRow(
  batches: Iterable<CanonicalRow[]> | AsyncIterable<CanonicalRow[]>,
  fn: (row: CanonicalRow) => void,
): Promise<void> {
  if (Symbol.asyncIterator in batches) {
    for await (const batch of batches) for (const row of batch) fn(row);
    return;
  }
  for (const batch of batches) {
    for (const row of batch) fn(row);
    await yieldToLoop();
  }
}

export async function sourceChunkSums(
  reader: SourceTableReader,
  placement: RowPlacement,
  progress: (done: number) => void,
): Promise<SourceAggregate> {
  const strategy = placement.strategy;
  if (strategy.kind === "key-range" && strategy.ordered)
    return orderedChunkHashes(reader, placement, progress);
  // Two 32-bit sums per chunk (bytes 0-3 and 4-7 of each row's md5, signed, modulo 2^32): plain
  // numbers, no BigInt per row; the server computes the same (target-side.ts).
  const sums = new Map<string, { rows: number; high: number; low: number }>();
  let rows = 0;
  let seen = 0;
  await forEachRow(reader.rows(), (fields) => {
    seen++;
    if (seen % PROGRESS_EVERY === 0) progress(seen);
    const rowText = recordText(fields);
    const digest = md5(rowText);
    const chunk = placement.place(fields, rowText, digest);
    if (chunk === undefined) return;
    rows++;
    const acc = sums.get(chunk);
    const high = digest.readInt32BE(0);
    const low = digest.readInt32BE(4);
    if (acc) {
      acc.rows++;
      acc.high = (acc.high + high) % TWO_32;
      acc.low = (acc.low + low) % TWO_32;
    } else sums.set(chunk, { rows: 1, high, low });
  });
  progress(seen);
  const chunks: ChunkSums = new Map();
  for (const [chunk, acc] of sums) {
    chunks.set(chunk, {
      rows: acc.rows,
      checksum: uint32Hex(acc.high) + uint32Hex(acc.low),
    });
  }
  return { chunks, rows };
}

/**
 * Ordered key-range chunks: per chunk, one md5 over the canonical row texts joined by "\n" in
 * ascending key order (the reader returns rows in key order; the server aggregates with
 * `string_agg(... order by key)`).
 */
interface OrderedChunk {
  rows: number;
  hash: Hash;
  /** Row text not yet hashed (joined by newlines). */
  pending: string;
}

const HASH_BLOCK = 1 << 16;

async function orderedChunkHashes(
  reader: SourceTableReader,
  placement: RowPlacement,
  progress: (done: number) => void,
): Promise<SourceAggregate> {
  // Row texts are buffered per chunk and handed to md5 in blocks: one native call per ~64 KiB
  // instead of one per row.
  const hashes = new Map<string, OrderedChunk>();
  let seen = 0;
  let lastChunk = "";
  let last: OrderedChunk | undefined;
  await forEachRow(reader.rows(undefined, true), (fields) => {
    seen++;
    if (seen % PROGRESS_EVERY === 0) progress(seen);
    const rowText = recordText(fields);
    const chunk = placement.place(fields, rowText)!;
    if (chunk !== lastChunk && last && last.pending !== "") {
      // Rows come in key order, so the previous chunk is most likely done: its text goes to its hash
      // now, not at the end (a 5M-row table's ~1200 chunks held up to 64 KiB each until then).
      last.hash.update(last.pending);
      last.pending = "";
    }
    let acc = chunk === lastChunk ? last : hashes.get(chunk);
    if (!acc) {
      acc = { rows: 0, hash: createHash("md5"), pending: "" };
      hashes.set(chunk, acc);
    }
    acc.pending = acc.rows > 0 ? `${acc.pending}\n${rowText}` : rowText;
    acc.rows++;
    if (acc.pending.length >= HASH_BLOCK) {
      acc.hash.update(acc.pending);
      acc.pending = "";
    }
    lastChunk = chunk;
    last = acc;
  });
  progress(seen);
  const chunks: ChunkSums = new Map();
  for (const [chunk, acc] of hashes)
    chunks.set(chunk, { rows: acc.rows, checksum: acc.hash.update(acc.pending).digest("hex") });
  return { chunks, rows: seen };
}
