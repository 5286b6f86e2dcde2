import { createHash, hash as oneShotHash } from "node:crypto";
import type { LoadedRecordObserver } from "../documents/record-loader.ts";
import { CanonicalBytesWriter } from "./canonical-document-bytes.ts";
import { documentJsonbText } from "./canonical-document.ts";
import { md5 } from "./chunking.ts";

const md5Bytes: (bytes: Buffer) => Buffer =
  typeof oneShotHash === "function"
    ? (bytes) => oneShotHash("md5", bytes, "buffer") as unknown as Buffer
    : (bytes) => createHash("md5").update(bytes).digest();

/** Per-chunk figures of one side: rows and the exact sums of the row digests' two 32-bit halves. */
export type ChunkFigures = Map<string, { rows: number; checksum: string }>;

/**
 * The source side of a document table's verification, computed in the import's own pass over the
 * source: for every record loaded, md5(key identity || the jsonb text PostgreSQL prints for the
 * document), from the record's source bytes (or its parsed value) through the verifier's own canonical
 * functions, never from the COPY text. Only the first 8 bytes of each digest are kept (8 bytes a
 * record), and summed per chunk when the verification asks (see `chunkSums`), against the same sums the
 * server computes from what it stored (document-verify.ts).
 *
 * Pass it to importDocuments (`loadedRecords`) and then to verifyDocuments (`sourceDigests`).
 */
export class SourceDigests implements LoadedRecordObserver {
  /** Records loaded (digested). */
  rows = 0;
  /** Records the import left out (quarantined). */
  leftOut = 0;
  /** Duplicate keys the import met: then the digests are not the table's (its last record wins). */
  duplicates = 0;
  /** Why the digests cannot be used (a document the canonical functions reject), if so. */
  unusable: string | undefined;
  private digests = Buffer.allocUnsafe(8 * 65536);
  private readonly writer = new CanonicalBytesWriter();

  /** `keyed`: the table has key column(s), whose text goes before the document in each digest. */
  constructor(private readonly keyed: boolean) {}

  lineLoaded(key: string, bytes: Buffer, start: number, end: number): void {
    const id = this.keyed ? keyIdentity(key) : "";
    const writer = this.writer;
    writer.reserve(this.keyed ? Buffer.byteLength(id, "utf8") : 0, end - start);
    const prefix = this.keyed ? writer.out.write(id, 0, "utf8") : 0;
    const length = writer.write(bytes, start, end, prefix);
    if (length >= 0) this.keep(md5Bytes(writer.out.subarray(0, length)));
    else {
      const text = bytes.toString("utf8", start, end);
      this.recordLoaded(key, text, JSON.parse(text));
    }
  }

  recordLoaded(key: string, text: string, value: unknown): void {
    let canonical: string;
    try {
      canonical = documentJsonbText(text, value);
    } catch (error) {
      this.unusable ??= `a loaded document has no jsonb text here (${(error as Error).message})`;
      canonical = "";
    }
    this.keep(md5(this.keyed ? keyIdentity(key) + canonical : canonical));
  }

  recordLeftOut(records: number): void {
    this.leftOut += records;
  }

  duplicateKey(): void {
    this.duplicates++;
  }

  private keep(digest: Buffer): void {
    const at = this.rows * 8;
    if (at + 8 > this.digests.length) {
      const grown = Buffer.allocUnsafe(this.digests.length * 2);
      this.digests.copy(grown, 0, 0, at);
      this.digests = grown;
    }
    for (let i = 0; i < 8; i++) this.digests[at + i] = digest[i]!;
    this.rows++;
  }

  /**
   * Rows and checksum per chunk, as the server's query in document-verify.ts computes them: the chunk is
   * the digest's first 4 bytes (signed, sign bit cleared) modulo `buckets`, the checksum the exact sums of
   * the first 4 bytes (signed) and of the next 4 (unsigned), "high:low". Exact in doubles up to 2^21 rows
   * a chunk.
   */
  chunkSums(buckets: number): ChunkFigures {
    const rows = new Float64Array(buckets);
    const high = new Float64Array(buckets);
    const low = new Float64Array(buckets);
    const digests = this.digests;
    for (let r = 0; r < this.rows; r++) {
      const h = digests.readInt32BE(r * 8);
      const chunk = (h & 0x7fffffff) % buckets;
      rows[chunk]! += 1;
      high[chunk]! += h;
      low[chunk]! += digests.readUInt32BE(r * 8 + 4);
    }
    const figures: ChunkFigures = new Map();
    for (let c = 0; c < buckets; c++)
      if (rows[c]! > 0) figures.set(String(c), { rows: rows[c]!, checksum: `${high[c]}:${low[c]}` });
    return figures;
  }
}

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
