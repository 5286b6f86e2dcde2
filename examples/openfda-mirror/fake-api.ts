// A local HTTP server that behaves like the openFDA API for tests and the example: envelopes, limit <= 1000,
// skip <= 25000 then search_after paging with a Link header, zero hits = HTTP 404 NOT_FOUND, 429 over its
// rate, injected 5xx and hangs, and a download.json manifest with zipped partitions.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { keyString, type MirrorEndpoint, recordKey } from "../../src/mirror/endpoints.ts";
import { writeZip } from "../../src/mirror/zip.ts";

type Json = Record<string, unknown>;

export interface FakeEndpointData {
  endpoint: MirrorEndpoint;
  records: Json[];
  lastUpdated?: string;
  /** Records per zipped partition of the bulk download (default 5000). */
  partitionSize?: number;
}

export interface FakeApiOptions {
  data: FakeEndpointData[];
  /** Requests allowed per rolling window before 429 (default: unlimited). */
  rateLimit?: { requests: number; windowMs: number };
  /** Largest skip accepted (default 25000, openFDA's); lower it to reach search_after paging with fewer records. */
  maxSkip?: number;
}

export interface FakeApi {
  url: string;
  /** Requests served, by outcome. */
  stats: {
    requests: number;
    ok: number;
    notFound: number;
    rateLimited: number;
    failed: number;
    hung: number;
  };
  /** The api_key of each API request ("" without one), in order. */
  apiKeys: string[];
  /** The next `n` API requests answer `status` (default 503). */
  failNext(n: number, status?: number): void;
  /** The next `n` API requests never answer (the client's timeout fires). */
  hangNext(n: number): void;
  /** Replaces an endpoint's records (a new "export"), with a new last_updated. */
  setRecords(path: string, records: Json[], lastUpdated: string): void;
  close(): Promise<void>;
}

const META = {
  disclaimer:
    "Do not rely on openFDA to make decisions regarding medical care. While we make every effort to ensure that data is accurate, you should assume all results are unvalidated.",
  terms: "https://open.fda.gov/terms/",
  license: "https://open.fda.gov/license/",
};
const MAX_LIMIT = 1000;

interface Indexed {
  data: FakeEndpointData;
  sorted: { key: string; record: Json }[];
  lastUpdated: string;
  zips: Map<string, Buffer>;
}

function index(data: FakeEndpointData): Indexed {
  const sorted = data.records
    .map((record) => ({ key: keyString(recordKey(data.endpoint, record) ?? []), record }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { data, sorted, lastUpdated: data.lastUpdated ?? "2026-11-28", zips: new Map() };
}

/** `field:"value"` terms joined by AND (openFDA's syntax, the subset a mirror needs). */
function matcher(search: string | null): (record: Json) => boolean {
  if (!search) return () => true;
  const terms = search
    .split(/\s+AND\s+/)
    .filter(Boolean)
    .map((term) => {
      const colon = term.indexOf(":");
      if (colon < 0) throw new Error(`bad search term ${term}`);
      const field = term.slice(0, colon).split(".");
      const value = term
        .slice(colon + 1)
        .replace(/^"|"$/g, "")
        .toLowerCase();
      return { field, value };
    });
  const valuesAt = (value: unknown, path: string[]): unknown[] => {
    if (Array.isArray(value)) return value.flatMap((v) => valuesAt(v, path));
    if (path.length === 0) return [value];
    if (value === null || typeof value !== "object") return [];
    return valuesAt((value as Json)[path[0]!], path.slice(1));
  };
  return (record) =>
    terms.every((t) =>
      valuesAt(record, t.field).some((v) => v !== null && String(v).toLowerCase() === t.value),
    );
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const apiError = (code: string, message: string) => ({ error: { code, message } });

/** Starts the fake API on 127.0.0.1 (a free port). */
export async function startFakeApi(options: FakeApiOptions): Promise<FakeApi> {
  const endpoints = new Map<string, Indexed>(options.data.map((d) => [d.endpoint.path, index(d)]));
  const stats = { requests: 0, ok: 0, notFound: 0, rateLimited: 0, failed: 0, hung: 0 };
  const injected = { fail: 0, failStatus: 503, hang: 0 };
  const recent: number[] = [];
  const apiKeys: string[] = [];
  const MAX_SKIP = options.maxSkip ?? 25_000;
  const hanging = new Set<ServerResponse>();
  let url = "";

  function rateLimited(): boolean {
    const limit = options.rateLimit;
    if (!limit) return false;
    const now = Date.now();
    while (recent.length && recent[0]! <= now - limit.windowMs) recent.shift();
    if (recent.length >= limit.requests) return true;
    recent.push(now);
    return false;
  }

  function manifest(): Json {
    const device: Json = {};
    for (const [path, e] of endpoints) {
      const size = e.data.partitionSize ?? 5000;
      const parts = Math.max(1, Math.ceil(e.sorted.length / size));
      device[path.split("/")[1]!] = {
        export_date: e.lastUpdated,
        total_records: e.sorted.length,
        partitions: Array.from({ length: parts }, (_, p) => {
          const records = Math.min(size, e.sorted.length - p * size);
          const name = `${path.replace("/", "-")}-${String(p + 1).padStart(4, "0")}-of-${String(parts).padStart(4, "0")}.json.zip`;
          return {
            display_name: `${path} part ${p + 1} of ${parts}`,
            file: `${url}/download/${path}/${name}`,
            records,
            size_mb: (zipOf(e, path, p, size).length / 1e6).toFixed(4),
          };
        }),
      };
    }
    return { meta: { ...META, last_updated: new Date().toISOString().slice(0, 10) }, results: { device } };
  }

  function zipOf(e: Indexed, path: string, part: number, size: number): Buffer {
    const name = `${e.lastUpdated}:${part}`;
    let zip = e.zips.get(name);
    if (!zip) {
      const results = e.sorted.slice(part * size, (part + 1) * size).map((r) => r.record);
      const envelope = {
        meta: {
          ...META,
          last_updated: e.lastUpdated,
          results: { skip: 0, limit: results.length, total: results.length },
        },
        results,
      };
      zip = writeZip([
        { name: `${path.replace("/", "-")}-${part + 1}.json`, data: Buffer.from(JSON.stringify(envelope)) },
      ]);
      e.zips.set(name, zip);
    }
    return zip;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const parsed = new URL(req.url ?? "/", "http://127.0.0.1");
    const path = parsed.pathname;
    if (path === "/download.json") return send(res, 200, manifest());
    const download = /^\/download\/(device\/[^/]+)\/[^/]+-(\d+)-of-\d+\.json\.zip$/.exec(path);
    if (download) {
      const e = endpoints.get(download[1]!);
      if (!e) return send(res, 404, apiError("NOT_FOUND", "No such file"));
      const zip = zipOf(e, download[1]!, Number(download[2]) - 1, e.data.partitionSize ?? 5000);
      res.writeHead(200, { "content-type": "application/zip", "content-length": zip.length });
      res.end(zip);
      return;
    }
    stats.requests += 1;
    apiKeys.push(parsed.searchParams.get("api_key") ?? "");
    if (rateLimited()) {
      stats.rateLimited += 1;
      return send(res, 429, apiError("TOO_MANY_REQUESTS", "rate limit exceeded"), { "retry-after": "1" });
    }
    if (injected.hang > 0) {
      injected.hang -= 1;
      stats.hung += 1;
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      return;
    }
    if (injected.fail > 0) {
      injected.fail -= 1;
      stats.failed += 1;
      return send(res, injected.failStatus, apiError("SERVER_ERROR", "injected failure"));
    }
    const e = endpoints.get(path.replace(/^\//, "").replace(/\.json$/, ""));
    if (!e) return send(res, 404, apiError("NOT_FOUND", "No matches found!"));
    const limit = Number(parsed.searchParams.get("limit") ?? "1");
    const skip = Number(parsed.searchParams.get("skip") ?? "0");
    if (!(limit >= 0 && limit <= MAX_LIMIT))
      return send(
        res,
        400,
        apiError("BAD_REQUEST", `Limit cannot exceed ${MAX_LIMIT} results for search requests.`),
      );
    if (!(skip >= 0 && skip <= MAX_SKIP))
      return send(res, 400, apiError("BAD_REQUEST", `Skip value must ${MAX_SKIP} or less.`));
    let matches: { key: string; record: Json }[];
    try {
      const match = matcher(parsed.searchParams.get("search"));
      matches = e.sorted.filter((r) => match(r.record));
    } catch (error) {
      return send(res, 400, apiError("BAD_REQUEST", (error as Error).message));
    }
    const after = parsed.searchParams.get("search_after");
    const start = after === null ? skip : lowerBound(matches, after);
    const page = matches.slice(start, start + limit);
    if (matches.length === 0 || (page.length === 0 && limit > 0)) {
      stats.notFound += 1;
      return send(res, 404, apiError("NOT_FOUND", "No matches found!"));
    }
    const headers: Record<string, string> = {};
    if (start + page.length < matches.length && page.length > 0) {
      // as openFDA does: a next link, by skip while it may, then by search_after from the last key
      const next = new URL(`${url}${path}`);
      for (const [k, v] of parsed.searchParams)
        if (k !== "skip" && k !== "search_after") next.searchParams.set(k, v);
      if (after === null && skip + limit <= MAX_SKIP) next.searchParams.set("skip", String(skip + limit));
      else next.searchParams.set("search_after", page[page.length - 1]!.key);
      headers.link = `<${next.toString()}>; rel="next"`;
    }
    stats.ok += 1;
    send(
      res,
      200,
      {
        meta: {
          ...META,
          last_updated: e.lastUpdated,
          results: { skip: start, limit, total: matches.length },
        },
        results: page.map((r) => r.record),
      },
      headers,
    );
  }

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      send(res, 500, apiError("SERVER_ERROR", (error as Error).message));
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    stats,
    apiKeys,
    failNext(n, status = 503) {
      injected.fail = n;
      injected.failStatus = status;
    },
    hangNext(n) {
      injected.hang = n;
    },
    setRecords(path, records, lastUpdated) {
      const e = endpoints.get(path);
      if (!e) throw new Error(`no endpoint ${path}`);
      endpoints.set(path, index({ ...e.data, records, lastUpdated }));
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** First position whose key is greater than `after`. */
function lowerBound(sorted: { key: string }[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.key <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
