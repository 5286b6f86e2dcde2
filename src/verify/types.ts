import type { CanonicalKind, SourceReading } from "./canonical.ts";

/** One column to verify: where it comes from, where it landed, and how its values compare. */
export interface VerifyColumn {
  /** Column name in the target table. */
  name: string;
  /** Column (or field) name in the source. */
  sourceName: string;
  /** The canonical kind of the PostgreSQL type the import chose for it. */
  kind: CanonicalKind;
  /** How the source value is read before conversion (e.g. a SQLite integer holding epoch milliseconds). */
  reading: SourceReading;
  /** The PostgreSQL type the import chose, as text (for messages). */
  pgType: string;
  /**
   * Encrypted at rest (jsonb envelopes): the target side decrypts it (VerifyTablesOptions.decryptor)
   * before comparing; `kind` and `pgType` are those of the decrypted values.
   */
  encrypted?: boolean;
}

/** One table to verify. */
export interface VerifyTable {
  /** Source table (or collection) name. */
  sourceTable: string;
  schema: string;
  table: string;
  columns: VerifyColumn[];
  /** Target column names of the row key (primary key). Empty: the whole row is its own identity. */
  key: string[];
  /**
   * Only the target rows these transactions inserted (32-bit xids, as xmin shows them): the rows an
   * `--if-exists append` run added to a table that already had rows. Absent: every row.
   */
  insertedBy?: string[];
}

export type TableStatus = "identical" | "mismatch" | "error";

/** A row's key: target column name -> canonical text. */
export type RowKey = Record<string, string | null>;

export interface ColumnDifference {
  column: string;
  /** Canonical text on the source side (null for NULL). */
  source: string | null;
  /** Canonical text of what PostgreSQL stores (null for NULL). */
  target: string | null;
}

export interface ChangedRow {
  key: RowKey;
  columns: ColumnDifference[];
}

export interface TableVerification {
  sourceTable: string;
  schema: string;
  table: string;
  status: TableStatus;
  /** Rows in the source (all of them, also when sampling). */
  sourceRows: number;
  /** Rows in the target table (all of them). */
  targetRows: number;
  /** Set when `sample` was given: the fraction and the rows that fell into the sample on each side. */
  sample?: { fraction: number; sourceRows: number; targetRows: number };
  chunking: {
    strategy: "key-range" | "key-hash" | "row-hash";
    /** Chunks holding rows on either side. */
    chunks: number;
    mismatched: number;
    /** Mismatched chunks narrowed to rows (at most `maxNarrowChunks`). */
    narrowed: number;
    /** Connections the server's hashing of the table was split among (one snapshot), when more than one. */
    targetConnections?: number;
  };
  /** sha256 over the sorted per-chunk (chunk, rows, checksum) lines of each side. */
  checksums: { source: string; target: string };
  /** Rows in the source but not in the target (first `maxDiffs`). */
  missing: RowKey[];
  /** Rows in the target but not in the source (first `maxDiffs`). */
  extra: RowKey[];
  /** Rows present on both sides whose values differ (first `maxDiffs`). */
  changed: ChangedRow[];
  /** Source rows the import quarantined (kept in pgshift.quarantine): left out of the comparison. */
  quarantinedRows: number;
  /** Totals found in the narrowed chunks; exact when `complete`. */
  missingRows: number;
  extraRows: number;
  changedRows: number;
  /** Every mismatched chunk was narrowed, so the totals above are exact. */
  complete: boolean;
  /** Structural differences found before comparing rows (missing table or column, type drift). */
  problems: string[];
  error?: { code: string; message: string };
  /** Time to the source side's checksums and to the server's (they run at the same time). */
  timings: { sourceMs: number; targetMs: number };
  durationMs: number;
}
