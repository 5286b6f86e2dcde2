import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { jsonFileSource } from "../sources/json/json-file-source.ts";
import { UsageError } from "../errors.ts";
import { backoffDelay } from "../pg/retry.ts";
import type { ProgressCallback } from "../progress.ts";
import { DEFAULT_TTL_SECONDS, keyString, type MirrorEndpoint, recordKey } from "./endpoints.ts";
import { ContentFingerprint } from "./fingerprint.ts";
import { endpointCacheDir, writeJsonAtomically } from "./json-cache.ts";
import type { EndpointFreshness } from "./mirror-schema.ts";
import { ApiRequestError, ApiUnavailableError } from "./mirror-errors.ts";
import { listZipEntries, openZipEntry } from "./zip.ts";

/** One partition of a bulk export, as download.json lists it. */
export interface ManifestPartition {
  file: string;
  records: number;
  size_mb: string | number;
  display_name?: string;
}

export interface DownloadOptions {
  /** URL of the manifest (https://api.fda.gov/download.json). */
  manifestUrl: string;
  endpoint: MirrorEndpoint;
  cacheDir: string;
  /** Per request (default 60 s: partitions are large). */
  timeoutMs?: number;
  retries?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface DownloadResult {
  endpoint: string;
  exportDate: string | null;
  partitions: number;
  /** Partitions fetched this run (new or changed size, records or export date). */
  fetched: string[];
  /** Partitions kept as they were (unchanged in the manifest). */
  unchanged: string[];
  /** Partition files removed because the manifest no longer lists them. */
  removed: string[];
  records: number;
  fingerprint: string;
  freshness: EndpointFreshness;
  durationMs: number;
}

interface PartitionState {
  size_mb: string;
  records: number;
  exportDate: string | null;
  /** What the partition's records added to the fingerprint, and how many there were. */
  fingerprint: string;
  count: number;
}

interface DownloadState {
  version: 1;
  endpoint: string;
  partitions: Record<string, PartitionState>;
}

async function fetchWithRetry(url: string, options: DownloadOptions): Promise<Response> {
  const retries = options.retries ?? 4;
  for (let attempt = 0; ; attempt++) {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 60_000);
    let failure: string;
    try {
      const response = await fetch(url, {
        signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
      });
      if (response.ok) return response;
      if (response.status !== 429 && response.status < 500)
        throw new ApiRequestError(`${url} answered HTTP ${response.status}`, response.status, url);
      await response.body?.cancel();
      failure = `HTTP ${response.status}`;
    } catch (error) {
      if (error instanceof ApiRequestError || options.signal?.aborted) throw error;
      failure = timeout.aborted ? "timed out" : (error as Error).message;
    }
    if (attempt >= retries)
      throw new ApiUnavailableError(`${url}: ${failure} (after ${attempt + 1} attempt(s))`, url, attempt + 1);
    await sleep(backoffDelay(attempt, 500, 10_000, Math.random));
  }
}

/** The endpoint's entry of the manifest: `results.device["510k"]`. */
function manifestEntry(
  manifest: unknown,
  endpoint: MirrorEndpoint,
): { export_date?: string; total_records?: number; partitions: ManifestPartition[] } {
  let entry: unknown = (manifest as { results?: unknown })?.results;
  for (const part of endpoint.path.split("/"))
    entry = entry && typeof entry === "object" ? (entry as Record<string, unknown>)[part] : undefined;
  const partitions = (entry as { partitions?: unknown } | undefined)?.partitions;
  if (!Array.isArray(partitions))
    throw new UsageError(
      `the manifest lists no partitions for ${endpoint.path} (results.${endpoint.path.replace("/", ".")})`,
    );
  return entry as { export_date?: string; partitions: ManifestPartition[] };
}

/**
 * Bulk download of one endpoint: reads the manifest, fetches only the partitions whose size, record count
 * or export date changed since the last download, and unzips each one streaming into
 * `<cacheDir>/<endpoint>/partitions/<name>.json` (an API envelope, which `pgshift mirror refresh` imports).
 * Partitions the manifest no longer lists are removed. The fingerprint is the pull's (per record), kept
 * per partition so unchanged partitions are not read again.
 */
export async function downloadEndpoint(options: DownloadOptions): Promise<DownloadResult> {
  const started = performance.now();
  const { endpoint } = options;
  const root = endpointCacheDir(options.cacheDir, endpoint);
  const target = join(root, "partitions");
  const work = join(root, ".downloads");
  const stateFile = join(root, ".download-state.json");
  await mkdir(target, { recursive: true });
  await mkdir(work, { recursive: true });
  const manifest = await (await fetchWithRetry(options.manifestUrl, options)).json();
  const entry = manifestEntry(manifest, endpoint);
  const exportDate = entry.export_date ?? null;
  const state: DownloadState = await readFile(stateFile, "utf8").then(
    (text) => JSON.parse(text) as DownloadState,
    () => ({ version: 1, endpoint: endpoint.name, partitions: {} }),
  );
  const present = new Set(await readdir(target));
  const fetched: string[] = [];
  const unchanged: string[] = [];
  const listed = new Set<string>();
  let done = 0;
  for (const partition of entry.partitions) {
    const name = basename(new URL(partition.file, options.manifestUrl).pathname).replace(/\.zip$/i, "");
    const file = name.endsWith(".json") ? name : `${name}.json`;
    listed.add(file);
    const known = state.partitions[file];
    if (
      known &&
      present.has(file) &&
      known.size_mb === String(partition.size_mb) &&
      known.records === partition.records &&
      known.exportDate === exportDate
    ) {
      unchanged.push(file);
      done += known.count;
      continue;
    }
    const zip = join(work, `${file}.zip`);
    const response = await fetchWithRetry(new URL(partition.file, options.manifestUrl).toString(), options);
    await pipeline(Readable.fromWeb(response.body as never), createWriteStream(`${zip}.part`));
    await rename(`${zip}.part`, zip);
    const entries = (await listZipEntries(zip)).filter((e) => !e.name.endsWith("/"));
    if (entries.length !== 1)
      throw new ApiRequestError(
        `${partition.file} holds ${entries.length} files; a partition holds one`,
        200,
        partition.file,
      );
    const partial = join(work, `${file}.part`);
    await pipeline(await openZipEntry(zip, entries[0]!), createWriteStream(partial));
    // read back streaming: the count and fingerprint of what was written, before it replaces the old copy
    const fingerprint = new ContentFingerprint();
    let count = 0;
    for await (const item of jsonFileSource(partial, { recordsPointer: ["results"] }).read()) {
      if (item.kind !== "record")
        throw new ApiRequestError(`${partition.file}: ${item.reason}`, 200, partition.file);
      const key = recordKey(endpoint, item.value);
      if (!key)
        throw new ApiRequestError(
          `${partition.file}: ${item.location} has no ${endpoint.key.join(", ")}`,
          200,
          partition.file,
        );
      fingerprint.add(keyString(key), item.value);
      count += 1;
    }
    await rename(partial, join(target, file));
    await rm(zip, { force: true });
    state.partitions[file] = {
      size_mb: String(partition.size_mb),
      records: partition.records,
      exportDate,
      fingerprint: fingerprint.toString(),
      count,
    };
    await writeJsonAtomically(stateFile, state);
    fetched.push(file);
    done += count;
    options.onProgress?.({ task: `download ${endpoint.name}`, done, unit: "records" });
  }
  const removed: string[] = [];
  for (const file of present)
    if (!listed.has(file) && file.endsWith(".json")) {
      await rm(join(target, file), { force: true });
      delete state.partitions[file];
      removed.push(file);
    }
  await writeJsonAtomically(stateFile, state);
  await rm(work, { recursive: true, force: true });
  // the sum of the partitions' fingerprints is the fingerprint of all their records (it is a sum)
  let total = 0n;
  let records = 0;
  for (const file of listed) {
    total = (total + BigInt(`0x${state.partitions[file]!.fingerprint}`)) % (1n << 128n);
    records += state.partitions[file]!.count;
  }
  const fingerprint = total.toString(16).padStart(32, "0");
  const freshness: EndpointFreshness = {
    endpoint: endpoint.name,
    apiPath: endpoint.path,
    sourceLastUpdated: null,
    exportDate,
    fetchedAt: new Date().toISOString(),
    recordCount: records,
    fingerprint,
    ttlSeconds: endpoint.ttlSeconds ?? DEFAULT_TTL_SECONDS,
    cacheDir: root,
    how: "download",
  };
  await writeJsonAtomically(join(root, ".freshness.json"), freshness);
  return {
    endpoint: endpoint.name,
    exportDate,
    partitions: listed.size,
    fetched,
    unchanged,
    removed,
    records,
    fingerprint,
    freshness,
    durationMs: performance.now() - started,
  };
}
