import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ProgressCallback } from "../progress.ts";
import { UsageError } from "../errors.ts";
import { type ApiClient, type ApiClientOptions, createApiClient, MAX_LIMIT, MAX_SKIP } from "./api-client.ts";
import { DEFAULT_TTL_SECONDS, keyString, type MirrorEndpoint, recordKey } from "./endpoints.ts";
import { ContentFingerprint } from "./fingerprint.ts";
import { endpointCacheDir, writeJsonAtomically } from "./json-cache.ts";
import type { EndpointFreshness } from "./mirror-schema.ts";
import { ApiRequestError, PullStateError } from "./mirror-errors.ts";

export interface PullOptions {
  /** A client, or the options to make one (base URL, key, rate limit, timeout, retries). */
  api: ApiClient | ApiClientOptions;
  endpoint: MirrorEndpoint;
  /** The cache directory; the endpoint's pages go to `<cacheDir>/<endpoint>/pages/`. */
  cacheDir: string;
  /** openFDA search expression (default: every record). */
  search?: string;
  /** Records per request (default and maximum 1000). */
  pageSize?: number;
  /** Forget an unfinished pull's state and start over. */
  restart?: boolean;
  onProgress?: ProgressCallback;
  /** Stops after the page in flight; its state is saved, and the next pull resumes there. */
  signal?: AbortSignal;
}

/** The state file of an unfinished pull (`<cacheDir>/<endpoint>/.pull-state.json`). */
interface PullState {
  version: 1;
  endpoint: string;
  path: string;
  search: string | null;
  pageSize: number;
  /** URL of the next page to fetch; null when the pull is complete. */
  nextUrl: string | null;
  pages: number;
  records: number;
  total: number | null;
  lastUpdated: string | null;
  fingerprint: string;
  startedAt: string;
  done: boolean;
}

export interface PullResult {
  endpoint: string;
  status: "complete" | "interrupted";
  /** Continued a pull an earlier run left unfinished. */
  resumed: boolean;
  /** The source changed export (last_updated) under an unfinished pull, which was started over. */
  restartedBecause?: string;
  pages: number;
  pagesThisRun: number;
  records: number;
  total: number | null;
  lastUpdated: string | null;
  fingerprint: string;
  /** Where the complete pull's pages are (`.../pages`); the unfinished one's state stays in the directory. */
  directory: string;
  /** What to record in pgshift.mirror_endpoints (complete pulls). */
  freshness?: EndpointFreshness;
  requests: number;
  durationMs: number;
}

const pageName = (n: number) => `page-${String(n).padStart(6, "0")}.json`;

async function readState(file: string): Promise<PullState | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as PullState;
  } catch {
    throw new PullStateError(`the pull state ${file} is not JSON; delete it or pass --restart`, file);
  }
}

/**
 * Pages an endpoint into the cache as envelope files (`page-000001.json`, ...), at the client's rate limit.
 * Resumable: after each page is written (atomically), the state file records the next page's URL, so a
 * killed pull resumes at the first page not recorded, and a page fetched twice overwrites itself: no
 * record lost or duplicated. Pages go to `.pages.partial/` until the last one; then it replaces `pages/`
 * (and write-through `records/`, which the full pull supersedes). Beyond skip 25000 it follows the API's
 * `Link: rel="next"` (search_after).
 *
 * @example
 *   const result = await pullEndpoint({ api: { baseUrl: "https://api.fda.gov" }, endpoint, cacheDir: "cache" });
 */
export async function pullEndpoint(options: PullOptions): Promise<PullResult> {
  const started = performance.now();
  const { endpoint } = options;
  const api = "get" in options.api ? options.api : createApiClient(options.api);
  const requestsBefore = api.metrics().requests;
  const pageSize = options.pageSize ?? MAX_LIMIT;
  if (!(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= MAX_LIMIT))
    throw new UsageError(`the page size must be a whole number from 1 to ${MAX_LIMIT}, got ${pageSize}`);
  const root = endpointCacheDir(options.cacheDir, endpoint);
  const partial = join(root, ".pages.partial");
  const stateFile = join(root, ".pull-state.json");
  await mkdir(root, { recursive: true });

  const fresh = (): PullState => ({
    version: 1,
    endpoint: endpoint.name,
    path: endpoint.path,
    search: options.search ?? null,
    pageSize,
    nextUrl: api.urlFor(endpoint.path, {
      limit: pageSize,
      ...(options.search ? { search: options.search } : {}),
    }),
    pages: 0,
    records: 0,
    total: null,
    lastUpdated: null,
    fingerprint: new ContentFingerprint().toString(),
    startedAt: new Date().toISOString(),
    done: false,
  });
  let state = options.restart ? undefined : await readState(stateFile);
  let resumed = false;
  if (state && !state.done) {
    if (
      state.endpoint !== endpoint.name ||
      state.search !== (options.search ?? null) ||
      state.pageSize !== pageSize
    )
      throw new PullStateError(
        `${stateFile} belongs to an unfinished pull of ${state.endpoint} (search ${state.search ?? "none"}, page size ${state.pageSize}); finish it with the same options or pass --restart`,
        stateFile,
      );
    resumed = true;
  } else {
    state = fresh();
    await rm(partial, { recursive: true, force: true });
  }
  await mkdir(partial, { recursive: true });
  let restartedBecause: string | undefined;
  let pagesThisRun = 0;
  let fp = new ContentFingerprint(state.fingerprint);

  while (state.nextUrl) {
    if (options.signal?.aborted) break;
    const page = await api.get(state.nextUrl, options.signal);
    const meta = page.envelope.meta;
    const lastUpdated = meta.last_updated ?? null;
    if (state.pages > 0 && state.lastUpdated && lastUpdated && lastUpdated !== state.lastUpdated) {
      // the source published a new export under us: pages of two exports must not be mixed
      restartedBecause = `the source's last_updated changed from ${state.lastUpdated} to ${lastUpdated}`;
      state = fresh();
      fp = new ContentFingerprint();
      await rm(partial, { recursive: true, force: true });
      await mkdir(partial, { recursive: true });
      continue;
    }
    const results = page.envelope.results;
    for (const record of results) {
      const key = recordKey(endpoint, record);
      if (!key)
        throw new ApiRequestError(
          `a record of ${endpoint.path} on page ${state.pages + 1} has no ${endpoint.key.join(", ")}`,
          page.status,
          state.nextUrl,
        );
      fp.add(keyString(key), record);
    }
    if (results.length > 0) {
      await writeJsonAtomically(join(partial, pageName(state.pages + 1)), page.envelope);
      state.pages += 1;
    }
    state.records += results.length;
    state.total = meta.results?.total ?? state.total;
    state.lastUpdated = lastUpdated ?? state.lastUpdated;
    state.fingerprint = fp.toString();
    state.nextUrl = nextPageUrl(api, endpoint, state, page.next, results.length, options.search);
    await writeJsonAtomically(stateFile, state);
    pagesThisRun += 1;
    options.onProgress?.({
      task: `pull ${endpoint.name}`,
      done: state.records,
      ...(state.total !== null ? { total: state.total } : {}),
      unit: "records",
    });
  }

  const base = {
    endpoint: endpoint.name,
    resumed,
    ...(restartedBecause ? { restartedBecause } : {}),
    pages: state.pages,
    pagesThisRun,
    records: state.records,
    total: state.total,
    lastUpdated: state.lastUpdated,
    fingerprint: state.fingerprint,
    requests: api.metrics().requests - requestsBefore,
  };
  if (state.nextUrl) {
    return { ...base, status: "interrupted", directory: partial, durationMs: performance.now() - started };
  }
  // complete: the new pages replace the old ones, and supersede what was written through
  const pages = join(root, "pages");
  const old = join(root, ".pages.old");
  await rm(old, { recursive: true, force: true });
  await rename(pages, old).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
  await rename(partial, pages);
  await rm(old, { recursive: true, force: true });
  await rm(join(root, "records"), { recursive: true, force: true });
  state.done = true;
  await writeJsonAtomically(stateFile, state);
  const freshness: EndpointFreshness = {
    endpoint: endpoint.name,
    apiPath: endpoint.path,
    sourceLastUpdated: state.lastUpdated,
    exportDate: null,
    fetchedAt: new Date().toISOString(),
    recordCount: state.records,
    fingerprint: state.fingerprint,
    ttlSeconds: endpoint.ttlSeconds ?? DEFAULT_TTL_SECONDS,
    cacheDir: root,
    how: "pull",
  };
  await writeJsonAtomically(join(root, ".freshness.json"), freshness);
  return {
    ...base,
    status: "complete",
    directory: pages,
    freshness,
    durationMs: performance.now() - started,
  };
}

/** The next page: the API's Link while it gives one, else by skip while skip may grow; null when done. */
function nextPageUrl(
  api: ApiClient,
  endpoint: MirrorEndpoint,
  state: PullState,
  link: string | undefined,
  got: number,
  search: string | undefined,
): string | null {
  if (got === 0) return null;
  if (link) return link;
  if (state.total === null || state.records >= state.total) return null;
  if (state.records > MAX_SKIP)
    throw new ApiRequestError(
      `${endpoint.path} has ${state.total} records but sent no Link (search_after) past skip ${MAX_SKIP}; narrow the pull with --search`,
      200,
      endpoint.path,
    );
  return api.urlFor(endpoint.path, {
    limit: state.pageSize,
    skip: state.records,
    ...(search ? { search } : {}),
  });
}
