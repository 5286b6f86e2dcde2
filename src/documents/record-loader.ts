import { stopIfAborted } from "../pg/abort.ts";
import type pg from "pg";
import { ExitCode, PgshiftError } from "../errors.ts";
import { type BadValuePolicy, insertQuarantine, type QuarantineEntry } from "../load/quarantine.ts";
import type { CopyBuffer } from "../pg/copy-buffer.ts";
import type { CopyFanout } from "../pg/copy-fanout.ts";
import type { ProgressCallback } from "../progress.ts";
import type { BuiltRow, DocumentBytesBuilder } from "./row-builder.ts";
import type { DocumentSource, SourceItem, SourceProgress, SourceRecord } from "./source-record.ts";

export type DuplicatePolicy = "fail" | "last-wins";

/** A record that cannot be imported under --on-bad-value fail (or cannot be quarantined). */
export class BadRecordError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown>) {
    super("bad_record", message, { exitCode: ExitCode.failure, details });
  }
}

/** The same key twice in one import under --duplicates fail. */
export class DuplicateKeyError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown>) {
    super("duplicate_key", message, { exitCode: ExitCode.failure, details });
  }
}

const QUARANTINE_FLUSH_ENTRIES = 1000;
const QUARANTINE_FLUSH_BYTES = 16 * 1024 * 1024;
/** COPY data handed to a connection at a time: big enough to be cheap, small enough to share out. */
const CHUNK_BYTES = 1 << 20;
const PROGRESS_EVERY = 10_000;
const SAMPLE = 100;

/**
 * Sees each record as the load takes it, in source order (verification computes its source side in the
 * import's own pass over the source: verify/source-digests.ts). `key` is the duplicate-detection key
 * (parts joined by NUL; "" without key columns).
 */
export interface LoadedRecordObserver {
  /** A record loaded from its line's bytes, bytes[start, end), as the source has them. */
  lineLoaded(key: string, bytes: Buffer, start: number, end: number): void;
  /** A record loaded through the exact path: its JSON text and its parsed value. */
  recordLoaded(key: string, text: string, value: unknown): void;
  /** The lines given by lineLoaded since the last call are all of their batch (its buffer is the reader's). */
  batchDone(): void;
  /** Records that did not load (quarantined). */
  recordLeftOut(records: number): void;
  /** A key met again (under last-wins; under fail the import stops). */
  duplicateKey(): void;
}

export interface RecordLoaderOptions {
  builder: { build(record: SourceRecord): BuiltRow };
  /** The bytes fast path (document tables from line sources); absent: every record is parsed. */
  bytesBuilder?: DocumentBytesBuilder | undefined;
  /** Types of the loaded columns, in COPY order (the ordinal last, when `ordinals`). */
  columnTypes: readonly string[];
  /** Append an increasing ordinal to each row (last-wins picks the highest). */
  ordinals: boolean;
  /** Whether rows have a key (duplicate detection). */
  keyed: boolean;
  buffer: CopyBuffer;
  sink: CopyFanout;
  /** The connection quarantined rows go to (in the import's transaction). */
  client: pg.ClientBase;
  /** Whether `sink` COPYs on `client` itself (then it finishes them before inserting quarantine rows). */
  sinkOnClient: boolean;
  policy: BadValuePolicy;
  duplicatePolicy: DuplicatePolicy;
  runId: string;
  sourceLabel: string;
  targetSchema: string;
  targetTable: string;
  task: string;
  onProgress: ProgressCallback | undefined;
  sourceProgress: ((p: SourceProgress) => void) | undefined;
  /** Stops the load between chunks (the import's transaction then rolls back). */
  signal?: AbortSignal | undefined;
  observer?: LoadedRecordObserver | undefined;
}

/**
 * The load step of a document import: reads every record of a source, turns it into a row in the COPY
 * buffer (bytes fast path first, exact path otherwise), detects duplicate keys in source order, sends
 * chunks to the COPY fan-out and keeps the quarantine. Counts are kept so that
 * recordsRead = recordsLoaded + quarantined.
 */
export class RecordLoader {
  recordsRead = 0;
  recordsLoaded = 0;
  quarantined = 0;
  duplicateCount = 0;
  readonly duplicateSample: { key: string; location: string; firstIn: string }[] = [];
  readonly problems: { location: string; reason: string }[] = [];
  files = 0;
  filesReported = 0;
  private readonly fileNames: string[] = [];
  private readonly seen = new Map<string, number>();
  private readonly quarantine: QuarantineEntry[] = [];
  private quarantineBytes = 0;
  private ordinal = 0;
  private rowsSent = 0;
  private lastProgress = 0;

  constructor(private readonly o: RecordLoaderOptions) {}

  /** Loads every record of `source`; returns when the server has confirmed every row. */
  async load(source: DocumentSource): Promise<void> {
    try {
      if (this.o.bytesBuilder && source.readLines) await this.loadLines(source, this.o.bytesBuilder);
      else await this.loadItems(source);
      await this.send();
      this.recordsLoaded += await this.o.sink.finish();
      await this.flushQuarantine();
    } catch (error) {
      await this.o.sink.abort(error as Error);
      throw error;
    }
    this.o.onProgress?.({
      task: `${this.o.task} records`,
      done: this.recordsLoaded,
      unit: "records",
      finished: true,
    });
  }

  private progress = (p: SourceProgress) => {
    this.filesReported = Math.max(this.filesReported, p.files);
    this.o.sourceProgress?.(p);
  };

  private async loadItems(source: DocumentSource): Promise<void> {
    for await (const item of source.read(this.progress)) {
      this.handle(item);
      if (this.quarantineFull()) await this.flushQuarantine();
      if (this.o.buffer.size >= CHUNK_BYTES) {
        stopIfAborted(this.o.signal);
        await this.send();
      }
    }
  }

  private async loadLines(source: DocumentSource, fast: DocumentBytesBuilder): Promise<void> {
    const { buffer, keyed, ordinals, observer } = this.o;
    for await (const batch of source.readLines!(this.progress)) {
      stopIfAborted(this.o.signal);
      this.noteFile(batch.file);
      const fileIndex = this.fileNames.length - 1;
      for (let i = 0; i < batch.count; i++) {
        if (batch.text[i] === 1) {
          const key = fast.append(
            batch.bytes,
            batch.start[i]!,
            batch.end[i]!,
            batch.file,
            buffer,
            ordinals ? this.ordinal + 1 : undefined,
          );
          if (key !== undefined) {
            this.recordsRead++;
            if (ordinals) this.ordinal++;
            observer?.lineLoaded(key, batch.bytes, batch.start[i]!, batch.end[i]!);
            if (keyed) {
              const first = this.firstSeenIn(key, fileIndex);
              if (first !== undefined) this.duplicate(key, first, `${batch.file}:${batch.line[i]}`);
            }
            continue;
          }
        }
        const item = batch.item(i);
        if (item) this.handle(item);
        if (this.quarantineFull()) await this.flushQuarantine();
      }
      observer?.batchDone();
      if (buffer.size >= CHUNK_BYTES) await this.send();
    }
  }

  private noteFile(file: string): void {
    if (file !== this.fileNames[this.fileNames.length - 1]) {
      this.fileNames.push(file);
      this.files++;
    }
  }

  /**
   * Duplicate detection in source order: remembers `key` and says whether it was seen before (then
   * `duplicate()` must be called with the record's location: fail names both places; last-wins counts).
   */
  private firstSeenIn(key: string, fileIndex: number): number | undefined {
    if (fileIndex === 0) {
      // every key so far is from the first file: one lookup instead of two (it shows at 100k records)
      const size = this.seen.size;
      this.seen.set(key, 0);
      return this.seen.size === size ? 0 : undefined;
    }
    const first = this.seen.get(key);
    this.seen.set(key, fileIndex);
    return first;
  }

  private duplicate(key: string, first: number, location: string): void {
    this.duplicateCount++;
    this.o.observer?.duplicateKey();
    const firstIn = this.fileNames[first] ?? "";
    if (this.o.duplicatePolicy === "fail")
      throw new DuplicateKeyError(
        `duplicate key ${JSON.stringify(key.split("\u0000"))} at ${location} (first seen in ${firstIn}); pass --duplicates last-wins to keep the last one`,
        { location, firstIn },
      );
    if (this.duplicateSample.length < SAMPLE) this.duplicateSample.push({ key, location, firstIn });
  }

  /** One record or problem through the exact path (a parsed record and DocumentRowBuilder/TypedRowBuilder). */
  private handle(item: SourceItem): void {
    this.noteFile(item.file);
    if (item.kind === "problem") {
      this.recordsRead += item.records;
      this.bad(item.location, item.reason, item.raw(), item.rawFormat);
      return;
    }
    this.recordsRead++;
    const built = this.o.builder.build(item);
    if (!built.ok) {
      this.bad(item.location, built.reason, item.raw(), item.rawFormat, built.column);
      return;
    }
    if (built.key !== undefined) {
      const first = this.firstSeenIn(built.key, this.fileNames.length - 1);
      if (first !== undefined) this.duplicate(built.key, first, item.location);
    }
    const { buffer, columnTypes } = this.o;
    const values = built.values;
    if (this.o.ordinals) values.push(++this.ordinal);
    buffer.beginRow(values.length);
    try {
      for (let c = 0; c < values.length; c++) buffer.value(values[c], columnTypes[c]!);
    } catch (error) {
      buffer.dropRow();
      throw error;
    }
    buffer.endRow();
    this.o.observer?.recordLoaded(built.key ?? "", item.text ?? JSON.stringify(item.value), item.value);
  }

  private bad(
    location: string,
    problem: string,
    raw: Uint8Array | undefined,
    rawFormat: string,
    column?: string,
  ): void {
    const reason = problem.startsWith(location) ? problem : `${location}: ${problem}`;
    if (this.o.policy === "fail")
      throw new BadRecordError(`${reason}; pass --on-bad-value quarantine to load the other records`, {
        location,
      });
    if (raw === undefined)
      throw new BadRecordError(`${reason}; it is too large to quarantine byte-exact, so the import stops`, {
        location,
      });
    this.quarantine.push({
      runId: this.o.runId,
      source: this.o.sourceLabel,
      targetSchema: this.o.targetSchema,
      targetTable: this.o.targetTable,
      location,
      ...(column ? { column } : {}),
      reason,
      raw,
      rawFormat,
    });
    this.quarantineBytes += raw.length;
    this.quarantined++;
    this.o.observer?.recordLeftOut(1);
    if (this.problems.length < SAMPLE) this.problems.push({ location, reason });
  }

  private quarantineFull(): boolean {
    return (
      this.quarantine.length >= QUARANTINE_FLUSH_ENTRIES || this.quarantineBytes >= QUARANTINE_FLUSH_BYTES
    );
  }

  private async flushQuarantine(): Promise<void> {
    if (this.quarantine.length === 0) return;
    if (this.o.sinkOnClient) {
      // the connection is busy with COPY: end it (rows so far are confirmed), insert, go on with a new one
      await this.send();
      this.recordsLoaded += await this.o.sink.finish();
    }
    await insertQuarantine(this.o.client, this.quarantine.splice(0));
    this.quarantineBytes = 0;
  }

  private async send(): Promise<void> {
    const { buffer } = this.o;
    if (buffer.size === 0) return;
    const rows = buffer.rows;
    await this.o.sink.write(buffer.take());
    this.rowsSent += rows;
    if (this.o.onProgress && this.rowsSent - this.lastProgress >= PROGRESS_EVERY) {
      this.lastProgress = this.rowsSent;
      this.o.onProgress({ task: `${this.o.task} records`, done: this.rowsSent, unit: "records" });
    }
  }
}
