/**
 * What a document source yields: records (parsed, with where they came from) and problems (input that
 * could not become a record: malformed JSON, invalid UTF-8...). Problems go to the quarantine or fail the
 * import, per --on-bad-value; they never stop the other records from loading.
 */

/** How a quarantined `raw` is encoded (stored in pgshift.quarantine.raw_format). */
export type RawFormat = "json" | "ndjson-line" | "csv-line";

export interface SourceRecord {
  kind: "record";
  /** The parsed record (a plain object for documents; anything else is reported as a problem later). */
  value: unknown;
  /**
   * The record's exact JSON text when the source has it whole (an NDJSON line, a one-record file): stored
   * as-is so that the document is not re-serialized, and hashed for content_hash.
   */
  text?: string;
  /** File the record came from, relative to the source root (provenance column source_file). */
  file: string;
  /** Where: "data.ndjson:17", "api/page-3.json:/results/4", "export.csv:12". */
  location: string;
  /** The record's source bytes, byte-exact, for the quarantine. */
  raw(): Uint8Array;
  rawFormat: RawFormat;
}

export interface SourceProblem {
  kind: "problem";
  file: string;
  location: string;
  reason: string;
  /** The offending bytes (a line, a file), byte-exact; undefined when too large to keep. */
  raw(): Uint8Array | undefined;
  rawFormat: RawFormat;
  /** Records lost with this problem (1 for a bad line; a malformed file counts as 1). */
  records: number;
}

export type SourceItem = SourceRecord | SourceProblem;

/** Progress a source reports: files and bytes consumed so far. */
export interface SourceProgress {
  files: number;
  bytes: number;
  /** Total bytes when known up front (single files). */
  totalBytes?: number;
  /** Total files when known (a directory is counted, names only, before it is read). */
  totalFiles?: number;
}

/**
 * Lines of a line-oriented source (NDJSON), as byte ranges of one buffer, in file order: the fast path
 * of the document import reads records from these bytes without decoding or parsing them in
 * JavaScript. `item(i)` is what `read()` yields for the same line, for every line the fast path does
 * not take as it is.
 */
export interface LineBatch {
  file: string;
  bytes: Buffer;
  /** Entries (lines that are neither empty nor skipped) in this batch. */
  count: number;
  /** Entry i is the text bytes[start[i], end[i]) (no newline, no carriage return, no BOM). */
  start: Int32Array;
  end: Int32Array;
  line: Int32Array;
  /** 1 when entry i is valid UTF-8 text (else item(i) is a problem: invalid UTF-8, too long). */
  text: Uint8Array;
  /** The entry as `read()` yields it: a parsed record, a problem, or undefined for a blank line. */
  item(i: number): SourceItem | undefined;
}

/** A re-readable document source (the typed-table path reads it twice). */
export interface DocumentSource {
  /** e.g. "ndjson:data.ndjson" */
  label: string;
  /** Default table name: the file or directory name without extensions. */
  defaultTable: string;
  read(progress?: (p: SourceProgress) => void): AsyncIterable<SourceItem>;
  /** The same records as `read()`, as batches of raw lines (line-oriented sources only). */
  readLines?(progress?: (p: SourceProgress) => void): AsyncIterable<LineBatch>;
}

const encoder = new TextEncoder();

/** Bytes of a JSON text, for quarantining a re-serialized record. */
export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}
