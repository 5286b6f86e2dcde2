import { createHash, hash as oneShotHash, type BinaryLike } from "node:crypto";
import { Worker } from "node:worker_threads";
import type { LoadedRecordObserver } from "../documents/record-loader.ts";
import { runningFromSource, siblingModule } from "../version.ts";
import { CanonicalBytesWriter } from "./canonical-document-bytes.ts";
import { documentJsonbText } from "./canonical-document.ts";
import type { DigestWorkerMessage, DigestWorkerReply } from "./source-digests-worker.ts";

/**
 * md5 as a 16-character "binary" (latin1) string, one character a byte: of crypto.hash's outputs the cheapest
 * to make and to read for a 100-byte input, about half the cost of a Buffer.
 */
const md5Latin1: (data: BinaryLike) => string =
  typeof oneShotHash === "function"
    ? (data) => oneShotHash("md5", data, "binary")
    : (data) => createHash("md5").update(data).digest("binary");

/** Room before a document's canonical text for its key identity's length digits and ":". */
const KEY_AT = 16;

/** Per-chunk figures of one side: rows and the exact sums of the row digests' two 32-bit halves. */
export type ChunkFigures = Map<string, { rows: number; checksum: string }>;

/**
 * Length-prefixed key parts, as document-verify.ts and its SQL write them; `key` is the import's
 * duplicate-detection key (parts joined by NUL, which no key text holds).
 */
function keyIdentity(key: string): string {
  if (!key.includes("\u0000")) return `${Buffer.byteLength(key, "utf8")}:${key}`;
  return key
    .split("\u0000")
    .map((p) => `${Buffer.byteLength(p, "utf8")}:${p}`)
    .join("");
}

/**
 * md5(key identity || jsonb text of the document) per record, from the record's source bytes (or its
 * JSON text) through the verifier's own canonical functions, never from the COPY text; the first 8
 * bytes of each are kept (8 bytes a record). Runs in a worker thread (source-digests-worker.ts) or,
 * where no worker can start, in the caller's.
 */
export class DigestComputer {
  rows = 0;
  /** Why the digests cannot stand for the table (a document the canonical functions reject), if so. */
  unusable: string | undefined;
  digests: Buffer = Buffer.allocUnsafe(8 * 65536);
  private readonly writer = new CanonicalBytesWriter();

  constructor(private readonly keyed: boolean) {}

  line(key: string, bytes: Buffer, start: number, end: number): void {
    const writer = this.writer;
    let from = 0;
    let at = 0;
    if (this.keyed) {
      if (key.includes("\u0000")) return this.record(key, bytes.toString("utf8", start, end), undefined);
      // the key's bytes at KEY_AT, then its length and ":" just before them: keyIdentity, unallocated
      writer.reserve(KEY_AT + 3 * key.length, end - start);
      const out = writer.out;
      const keyBytes = out.write(key, KEY_AT, "utf8");
      at = KEY_AT + keyBytes;
      from = KEY_AT - 1;
      out[from] = 0x3a;
      let digits = keyBytes;
      do {
        out[--from] = 0x30 + (digits % 10);
        digits = Math.floor(digits / 10);
      } while (digits > 0);
    } else writer.reserve(0, end - start);
    const length = writer.write(bytes, start, end, at);
    if (length >= 0) this.keep(md5Latin1(writer.out.subarray(from, length)));
    else this.record(key, bytes.toString("utf8", start, end), undefined);
  }

  /** `value`: JSON.parse(text) when the caller has it. */
  record(key: string, text: string, value: unknown): void {
    let canonical = "";
    try {
      canonical = documentJsonbText(text, value === undefined ? JSON.parse(text) : value);
    } catch (error) {
      this.unusable ??= `a loaded document has no jsonb text here (${(error as Error).message})`;
    }
    this.keep(md5Latin1(this.keyed ? keyIdentity(key) + canonical : canonical));
  }

  /** Keeps the first 8 bytes of a digest given as latin1. */
  private keep(digest: string): void {
    const at = this.rows * 8;
    if (at + 8 > this.digests.length) {
      const grown = Buffer.allocUnsafe(this.digests.length * 2);
      this.digests.copy(grown, 0, 0, at);
      this.digests = grown;
    }
    for (let i = 0; i < 8; i++) this.digests[at + i] = digest.charCodeAt(i);
    this.rows++;
  }
}

/**
 * Rows and checksum per chunk of `rows` 8-byte digests, as the server's query in document-verify.ts
 * computes them: the chunk is the first 4 bytes (signed, sign bit cleared) modulo `buckets`, the
 * checksum the exact sums of the first 4 bytes (signed) and of the next 4 (unsigned), "high:low".
 * Exact in doubles up to 2^21 rows a chunk.
 */
export function digestChunkSums(digests: Buffer, rows: number, buckets: number): ChunkFigures {
  const counts = new Float64Array(buckets);
  const high = new Float64Array(buckets);
  const low = new Float64Array(buckets);
  for (let r = 0; r < rows; r++) {
    const h = digests.readInt32BE(r * 8);
    const chunk = (h & 0x7fffffff) % buckets;
    counts[chunk]! += 1;
    high[chunk]! += h;
    low[chunk]! += digests.readUInt32BE(r * 8 + 4);
  }
  const figures: ChunkFigures = new Map();
  for (let c = 0; c < buckets; c++)
    if (counts[c]! > 0) figures.set(String(c), { rows: counts[c]!, checksum: `${high[c]}:${low[c]}` });
  return figures;
}

/** Records handed to the worker at a time (the lines of one batch always go together). */
const RECORDS_PER_MESSAGE = 4096;

/**
 * The source side of a document table's verification, computed during the import's own pass over the
 * source (see DigestComputer): pass it to importDocuments (`loadedRecords`), then to verifyDocuments
 * (`sourceDigests`), which settles it and compares its per-chunk sums with the server's, computed from
 * what PostgreSQL stored. The digesting runs in a worker thread beside the load.
 */
export class SourceDigests implements LoadedRecordObserver {
  /** Records the import left out (quarantined). */
  leftOut = 0;
  /** Duplicate keys the import met: then the digests are not the table's (its last record wins). */
  duplicates = 0;
  private worker: Worker | undefined;
  private failure: string | undefined;
  private local: DigestComputer | undefined;
  private settled: Promise<DigestComputer | undefined> | undefined;
  private reply: DigestWorkerReply | undefined;
  private onReply: (() => void) | undefined;
  // the current batch's lines, sent together
  private lineBytes: Buffer | undefined;
  private lineStarts: number[] = [];
  private lineEnds: number[] = [];
  private lineKeys: string[] = [];
  private recordKeys: string[] = [];
  private recordTexts: string[] = [];

  /**
   * `keyed`: the table has key column(s), whose text goes before the document in each digest.
   * `thread`: digest in a worker thread (default); false: in this thread, as records load.
   */
  constructor(
    private readonly keyed: boolean,
    options: { thread?: boolean } = {},
  ) {
    if (options.thread === false) this.local = new DigestComputer(keyed);
    else {
      try {
        this.worker = startWorker(keyed);
        const ended = (reason: string) => {
          this.failure ??= reason;
          this.onReply?.();
        };
        this.worker.on("message", (reply: DigestWorkerReply) => {
          this.reply ??= reply;
          this.onReply?.();
        });
        this.worker.on("error", (error) => ended(`verification's digest thread failed (${error.message})`));
        this.worker.on("exit", (code) => ended(`verification's digest thread exited (code ${code})`));
      } catch {
        this.local = new DigestComputer(keyed);
      }
    }
  }

  lineLoaded(key: string, bytes: Buffer, start: number, end: number): void {
    if (this.local) return this.local.line(key, bytes, start, end);
    if (this.lineBytes !== bytes) this.sendLines();
    this.lineBytes = bytes;
    this.lineStarts.push(start);
    this.lineEnds.push(end);
    this.lineKeys.push(key);
  }

  batchDone(): void {
    this.sendLines();
  }

  recordLoaded(key: string, text: string, value: unknown): void {
    if (this.local) return this.local.record(key, text, value);
    this.recordKeys.push(key);
    this.recordTexts.push(text);
    if (this.recordKeys.length >= RECORDS_PER_MESSAGE) this.sendRecords();
  }

  recordLeftOut(records: number): void {
    this.leftOut += records;
  }

  duplicateKey(): void {
    this.duplicates++;
  }

  /** Copies the batch's lines (one region of its buffer) to the worker: the buffer is the reader's. */
  private sendLines(): void {
    const bytes = this.lineBytes;
    this.lineBytes = undefined;
    if (!bytes || this.lineStarts.length === 0) return;
    const first = this.lineStarts[0]!;
    const last = this.lineEnds[this.lineEnds.length - 1]!;
    // a buffer of its own (not the shared pool of small Buffers), to be transferred
    const region = Buffer.allocUnsafeSlow(last - first);
    bytes.copy(region, 0, first, last);
    const starts = Int32Array.from(this.lineStarts, (s) => s - first);
    const ends = Int32Array.from(this.lineEnds, (e) => e - first);
    this.post({ type: "lines", bytes: region, starts, ends, keys: this.lineKeys }, [
      region.buffer as ArrayBuffer,
      starts.buffer,
      ends.buffer,
    ]);
    this.lineStarts = [];
    this.lineEnds = [];
    this.lineKeys = [];
  }

  private sendRecords(): void {
    if (this.recordKeys.length === 0) return;
    this.post({ type: "records", keys: this.recordKeys, texts: this.recordTexts }, []);
    this.recordKeys = [];
    this.recordTexts = [];
  }

  private post(message: DigestWorkerMessage, transfer: ArrayBuffer[]): void {
    if (this.failure) return;
    try {
      this.worker!.postMessage(message, transfer);
    } catch (error) {
      this.failure ??= `verification's digest thread failed (${(error as Error).message})`;
    }
  }

  /** Waits for every record's digest; undefined when they cannot be had (the thread failed). */
  private settle(): Promise<DigestComputer | undefined> {
    if (this.local) return Promise.resolve(this.local);
    this.settled ??= new Promise<DigestComputer | undefined>((resolve) => {
      const worker = this.worker!;
      // kept alive while it is waited for (unreferenced before: an import that fails does not wait)
      worker.ref();
      const done = () => {
        this.onReply = undefined;
        void worker.terminate();
        const reply = this.reply;
        if (!reply || reply.type === "error") {
          if (reply?.type === "error") this.failure ??= reply.message;
          return resolve(undefined);
        }
        const computer = new DigestComputer(this.keyed);
        computer.rows = reply.rows;
        computer.digests = Buffer.from(
          reply.digests.buffer,
          reply.digests.byteOffset,
          reply.digests.byteLength,
        );
        if (reply.unusable) computer.unusable = reply.unusable;
        resolve(computer);
      };
      this.sendLines();
      this.sendRecords();
      if (this.failure || this.reply) return done();
      this.onReply = done;
      this.post({ type: "finish" }, []);
      if (this.failure) done();
    });
    return this.settled;
  }

  /**
   * The digests, once every record's is in: rows, per-chunk sums, or why they cannot stand for the
   * table (the verification then reads the source again).
   */
  async result(): Promise<
    { ok: true; rows: number; chunkSums: (buckets: number) => ChunkFigures } | { ok: false; reason: string }
  > {
    const computer = await this.settle();
    if (!computer) return { ok: false, reason: this.failure ?? "verification's digest thread failed" };
    if (computer.unusable) return { ok: false, reason: computer.unusable };
    if (this.duplicates > 0) return { ok: false, reason: "the source has duplicate keys" };
    return {
      ok: true,
      rows: computer.rows,
      chunkSums: (buckets) => digestChunkSums(computer.digests, computer.rows, buckets),
    };
  }

  /** Stops the digest thread (an import that failed, a verification not run). */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}

function startWorker(keyed: boolean): Worker {
  const entry = siblingModule(import.meta.url, "./source-digests-worker").href;
  const boot = runningFromSource(import.meta.url)
    ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`
    : `import(${JSON.stringify(entry)})`;
  const worker = new Worker(boot, {
    eval: true,
    workerData: { keyed },
    // many short-lived strings and buffers: a larger young generation collects them in fewer scavenges
    resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
  });
  worker.unref();
  return worker;
}
