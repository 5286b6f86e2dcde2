import { createHash, hash as oneShotHash } from "node:crypto";
import { quoteIdent } from "../pg/quote.ts";

/**
 * Rows are compared per chunk. A table with a single integer key is chunked by key range
 * (`key >> shift`, so both sides agree on boundaries without sorting); any other key by a hash
 * bucket of the key's canonical text; a table without key by a hash bucket of the whole row.
 * Both sides compute the same chunk number for the same row, in SQL and in TypeScript.
 */
export type ChunkStrategy =
  /**
   * `ordered`: rows of a chunk are hashed together in key order (one md5 over the row texts joined by
   * newlines) instead of one md5 per row; both sides can stream in integer key order, and it is much
   * cheaper. Not with sampling (which needs each key's hash anyway).
   */
  | { kind: "key-range"; shift: number; ordered?: boolean }
  | { kind: "key-hash"; buckets: number }
  | { kind: "row-hash"; buckets: number };

/** Target rows per chunk: small enough to narrow a mismatch quickly, large enough to keep chunks few. */
export const DEFAULT_CHUNK_ROWS = 4096;

export function md5(text: string): Buffer {
  if (typeof oneShotHash === "function") return oneShotHash("md5", text, "buffer") as unknown as Buffer;
  return createHash("md5").update(text).digest();
}

/** Chooses the strategy from source figures (both sides then use it). */
export function chooseStrategy(options: {
  rows: number;
  integerKey: boolean;
  hasKey: boolean;
  keyRange?: { min: bigint; max: bigint };
  chunkRows?: number;
}): ChunkStrategy {
  const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
  const buckets = Math.max(1, Math.ceil(options.rows / chunkRows));
  if (!options.hasKey) return { kind: "row-hash", buckets };
  if (!options.integerKey) return { kind: "key-hash", buckets };
  if (!options.keyRange || options.rows === 0) return { kind: "key-range", shift: 12 };
  const span = options.keyRange.max - options.keyRange.min + 1n;
  // Width of a chunk in key values so that chunks hold about chunkRows rows on average.
  const width = (span * BigInt(chunkRows)) / BigInt(Math.max(1, options.rows));
  let shift = 0;
  while (1n << BigInt(shift) < width && shift < 62) shift++;
  return { kind: "key-range", shift };
}

/** The chunk of an integer key given as canonical text (floor division by 2^shift, as SQL `>>`). */
export function rangeChunk(keyText: string, shift: number): string {
  if (keyText.length <= 15) return String(Math.floor(Number(keyText) / 2 ** shift));
  return (BigInt(keyText) >> BigInt(shift)).toString();
}

/** Key bounds [low, high) of a key-range chunk. */
export function rangeBounds(chunk: string, shift: number): [bigint, bigint] {
  const low = BigInt(chunk) << BigInt(shift);
  return [low, low + (1n << BigInt(shift))];
}

/** The hash chunk of a key or row text: first 4 bytes of its md5, as a signed int, masked, modulo buckets. */
export function hashChunk(digest: Buffer, buckets: number): string {
  return String((digest.readInt32BE(0) & 0x7fffffff) % buckets);
}

/** Whether a key falls in a sample of `fraction`: bytes 4..8 of its md5 below the threshold. */
export function inSample(digest: Buffer, threshold: number): boolean {
  return (digest.readInt32BE(4) & 0x7fffffff) < threshold;
}

export function sampleThreshold(fraction: number): number {
  return Math.floor(fraction * 2 ** 31);
}

/** SQL for the chunk of a row (text), given the key column, the key text and row text expressions. */
export function chunkSql(
  strategy: ChunkStrategy,
  exprs: { keyColumn?: string; keyText: string; rowText: string },
): string {
  switch (strategy.kind) {
    case "key-range":
      return `(${quoteIdent(exprs.keyColumn!)}::bigint >> ${strategy.shift})::text`;
    case "key-hash":
      return `((('x' || left(md5(${exprs.keyText}), 8))::bit(32)::int & 2147483647) % ${strategy.buckets})::text`;
    case "row-hash":
      return `((('x' || left(md5(${exprs.rowText}), 8))::bit(32)::int & 2147483647) % ${strategy.buckets})::text`;
  }
}

/** SQL condition for the sample, on the key text (or row text when there is no key). */
export function sampleSql(identityText: string, fraction: number): string {
  return `(('x' || substr(md5(${identityText}), 9, 8))::bit(32)::int & 2147483647) < ${sampleThreshold(fraction)}`;
}
