/**
 * What the verifier needs from a source, whatever its kind: counts, the integer key's range, and the
 * canonical fields of its rows, converted independently of the import's own code.
 */
export type CanonicalRow = (string | null)[];

export interface SourceTableReader {
  /** Exact number of rows in the source table. */
  count(): number | Promise<number>;
  /** Smallest and largest key when the table has a single integer key (for key-range chunks). */
  integerKeyRange():
    { min: bigint; max: bigint } | undefined | Promise<{ min: bigint; max: bigint } | undefined>;
  /**
   * Every row as canonical field texts, in the order of the verified table's columns, in batches
   * (the verifier yields to the event loop between batches). With `range`, only rows whose single
   * integer key lies in [low, high] (inclusive). With `ordered`, in ascending order of the single
   * integer key (required for ordered key-range chunks).
   */
  rows(range?: [bigint, bigint], ordered?: boolean): Iterable<CanonicalRow[]> | AsyncIterable<CanonicalRow[]>;
  close(): void;
}

/** Where the source is, and a fingerprint that proves which file was verified. */
export interface SourceFingerprint {
  kind: string;
  path: string;
  /** Bytes; for a directory, the sum over its files. */
  size: number;
  /** sha256 of the file (for a directory: of the sorted "name size sha256" lines of its files). */
  sha256: string;
}
