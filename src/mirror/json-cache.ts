import { createHash } from "node:crypto";
import { mkdir, open, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { getAtPointer, parsePointer } from "../documents/json-pointer.ts";
import { walkJsonFiles } from "../sources/json/json-dir-source.ts";
import type { ApiMeta } from "./api-client.ts";
import { keyString, type MirrorEndpoint, recordKey } from "./endpoints.ts";

/** A record found in the cache, with where and when it was written. */
export interface CachedRecord {
  record: Record<string, unknown>;
  file: string;
  /** The file's modification time: when the page or record was fetched. */
  fetchedAt: Date;
  /** The envelope's meta.last_updated, when the file has one. */
  lastUpdated?: string;
}

export interface JsonCacheOptions {
  /** JSON pointer of the records in each file's envelope (default "/results"); files without it hold one record or an array. */
  recordsPointer?: string;
  /** Parsed files kept in memory (default 16): a page of 1000 records is parsed once for many lookups. */
  parsedFiles?: number;
}

/** Where an endpoint's cache lives: `<dir>/<endpoint>/` with `pages/` (pulls) and `records/` (written through). */
export const endpointCacheDir = (cacheDir: string, endpoint: MirrorEndpoint) => join(cacheDir, endpoint.name);

interface ParsedFile {
  mtimeMs: number;
  lastUpdated?: string;
  records: Map<string, Record<string, unknown>>;
  /** Byte range of each record in the file, when the file is compact JSON (as pulls write it). */
  ranges?: Map<string, [number, number]>;
}

/** Where one record's bytes are: a lookup reads only those, not the whole page. */
interface RecordRange {
  file: string;
  mtimeMs: number;
  start: number;
  end: number;
  lastUpdated?: string;
}

/**
 * The JSON cache directory of one endpoint, read as the user already keeps it: any `.json` files under
 * `<dir>/<endpoint>/`, each an API envelope, an array of records or one record. Lookups by key go through
 * an index (key -> file) built on first use and rebuilt when a directory of the tree changes (files added
 * or removed); a file edited in place is re-read, and a record no longer in it is a miss.
 */
export class JsonCache {
  readonly dir: string;
  private readonly pointer: string[];
  private index: Map<string, string> | undefined;
  private ranges = new Map<string, RecordRange>();
  private stamp = "";
  private readonly parsed = new Map<string, ParsedFile>();
  private readonly capacity: number;

  constructor(
    cacheDir: string,
    readonly endpoint: MirrorEndpoint,
    options: JsonCacheOptions = {},
  ) {
    this.dir = endpointCacheDir(cacheDir, endpoint);
    this.pointer = parsePointer(options.recordsPointer ?? "/results");
    this.capacity = Math.max(1, options.parsedFiles ?? 16);
  }

  /** The record at `key` (its parts as strings), or undefined. */
  async get(key: readonly string[]): Promise<CachedRecord | undefined> {
    const index = await this.currentIndex();
    const wanted = keyString(key);
    const file = index.get(wanted);
    if (!file) return undefined;
    const direct = await this.readRange(wanted, file);
    if (direct) return direct;
    const parsed = await this.parse(file);
    const record = parsed?.records.get(wanted);
    if (!parsed || !record) {
      index.delete(wanted);
      return undefined;
    }
    return {
      record,
      file,
      fetchedAt: new Date(parsed.mtimeMs),
      ...(parsed.lastUpdated ? { lastUpdated: parsed.lastUpdated } : {}),
    };
  }

  /** Every record (later files win over earlier ones for the same key, as an import with last-wins does). */
  async *records(): AsyncGenerator<CachedRecord> {
    const index = await this.currentIndex();
    const byFile = new Map<string, Set<string>>();
    for (const [key, file] of index) {
      let keys = byFile.get(file);
      if (!keys) byFile.set(file, (keys = new Set()));
      keys.add(key);
    }
    for (const [file, keys] of byFile) {
      const parsed = await this.parse(file);
      if (!parsed) continue;
      for (const key of keys) {
        const record = parsed.records.get(key);
        if (record)
          yield {
            record,
            file,
            fetchedAt: new Date(parsed.mtimeMs),
            ...(parsed.lastUpdated ? { lastUpdated: parsed.lastUpdated } : {}),
          };
      }
    }
  }

  /** Writes one record as an envelope file under `records/` (atomically: a temporary file renamed). */
  async put(record: Record<string, unknown>, meta: ApiMeta = {}): Promise<string> {
    const key = recordKey(this.endpoint, record);
    if (!key) throw new Error(`record has no ${this.endpoint.key.join(", ")}`);
    const dir = join(this.dir, "records");
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${fileNameFor(keyString(key))}.json`);
    const envelope = { meta: { ...meta, results: { skip: 0, limit: 1, total: 1 } }, results: [record] };
    await writeJsonAtomically(file, envelope);
    this.parsed.delete(file);
    if (this.index) {
      this.index.set(keyString(key), file);
      // our own write changed the directory: keep the index instead of rebuilding it
      this.stamp = await this.treeStamp();
    }
    return file;
  }

  /** Forgets the index and parsed files (the next lookup rebuilds them). */
  reindex(): void {
    this.index = undefined;
    this.ranges.clear();
    this.parsed.clear();
  }

  /** The record read from its byte range, when the file is unchanged since it was indexed. */
  private async readRange(key: string, file: string): Promise<CachedRecord | undefined> {
    const range = this.ranges.get(key);
    if (!range || range.file !== file) return undefined;
    let handle;
    try {
      handle = await open(file, "r");
    } catch {
      return undefined;
    }
    try {
      if ((await handle.stat()).mtimeMs !== range.mtimeMs) return undefined;
      const bytes = Buffer.alloc(range.end - range.start);
      await handle.read(bytes, 0, bytes.length, range.start);
      const record = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
      const found = recordKey(this.endpoint, record);
      if (!found || keyString(found) !== key) return undefined;
      return {
        record,
        file,
        fetchedAt: new Date(range.mtimeMs),
        ...(range.lastUpdated ? { lastUpdated: range.lastUpdated } : {}),
      };
    } catch {
      return undefined;
    } finally {
      await handle.close();
    }
  }

  /** Number of distinct keys in the cache. */
  async count(): Promise<number> {
    return (await this.currentIndex()).size;
  }

  private async currentIndex(): Promise<Map<string, string>> {
    const stamp = await this.treeStamp();
    if (this.index && stamp === this.stamp) return this.index;
    const index = new Map<string, string>();
    const ranges = new Map<string, RecordRange>();
    try {
      for await (const file of walkJsonFiles(this.dir)) {
        const parsed = await this.parse(file, true);
        for (const key of parsed?.records.keys() ?? []) {
          index.set(key, file);
          const range = parsed!.ranges?.get(key);
          if (range)
            ranges.set(key, {
              file,
              mtimeMs: parsed!.mtimeMs,
              start: range[0],
              end: range[1],
              ...(parsed!.lastUpdated ? { lastUpdated: parsed!.lastUpdated } : {}),
            });
          else ranges.delete(key);
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    this.index = index;
    this.ranges = ranges;
    this.stamp = stamp;
    return index;
  }

  /** Modification times of the endpoint directory and its subdirectories: adding or removing a file changes one. */
  private async treeStamp(): Promise<string> {
    const times: number[] = [];
    for (const dir of [this.dir, join(this.dir, "pages"), join(this.dir, "records")]) {
      try {
        times.push((await stat(dir)).mtimeMs);
      } catch {
        times.push(0);
      }
    }
    return times.join(":");
  }

  private async parse(file: string, withRanges = false): Promise<ParsedFile | undefined> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
    } catch {
      this.parsed.delete(file);
      return undefined;
    }
    const cached = this.parsed.get(file);
    if (cached && cached.mtimeMs === mtimeMs && (!withRanges || cached.ranges)) {
      this.parsed.delete(file);
      this.parsed.set(file, cached);
      return cached;
    }
    let body: unknown;
    let text: string;
    try {
      text = await readFile(file, "utf8");
      body = JSON.parse(text);
    } catch {
      // a file cut off or being written is no answer; the other tiers are asked
      return undefined;
    }
    const inEnvelope = getAtPointer(body, this.pointer);
    const list = Array.isArray(inEnvelope) ? inEnvelope : Array.isArray(body) ? body : [body];
    const records = new Map<string, Record<string, unknown>>();
    const positions = withRanges ? recordRanges(text, list) : undefined;
    const ranges = positions ? new Map<string, [number, number]>() : undefined;
    for (const [i, record] of list.entries()) {
      const key = recordKey(this.endpoint, record);
      if (!key) continue;
      records.set(keyString(key), record as Record<string, unknown>);
      ranges?.set(keyString(key), positions!.get(i)!);
    }
    const lastUpdated = (body as { meta?: ApiMeta } | null)?.meta?.last_updated;
    const parsed: ParsedFile = {
      mtimeMs,
      records,
      ...(lastUpdated ? { lastUpdated } : {}),
      ...(ranges ? { ranges } : {}),
    };
    this.parsed.set(file, parsed);
    while (this.parsed.size > this.capacity) this.parsed.delete(this.parsed.keys().next().value!);
    return parsed;
  }
}

/**
 * Byte ranges of the records in a compact JSON file (what JSON.stringify wrote, as a pull writes pages):
 * each record's own serialization is found in order. Undefined when one is not found (whitespace,
 * escapes or number forms differ): lookups in that file then parse it whole.
 */
function recordRanges(text: string, list: readonly unknown[]): Map<number, [number, number]> | undefined {
  const ranges = new Map<number, [number, number]>();
  let cursor = 0;
  let bytes = 0;
  for (const [i, record] of list.entries()) {
    const piece = JSON.stringify(record);
    const at = text.indexOf(piece, cursor);
    if (at < 0) return undefined;
    bytes += Buffer.byteLength(text.slice(cursor, at));
    const length = Buffer.byteLength(piece);
    ranges.set(i, [bytes, bytes + length]);
    bytes += length;
    cursor = at + piece.length;
  }
  return ranges;
}

/** A file name for a key: URL-encoded, or a hash when that would be too long for a file system. */
export function fileNameFor(key: string): string {
  const encoded = encodeURIComponent(key).replace(/\./g, "%2E").replace(/\*/g, "%2A");
  return encoded.length <= 180 ? encoded : createHash("sha256").update(key).digest("hex");
}

/** Writes JSON to `file` through a temporary file and a rename: readers never see half a file. */
export async function writeJsonAtomically(file: string, value: unknown): Promise<void> {
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, JSON.stringify(value));
  await rename(temporary, file);
}
