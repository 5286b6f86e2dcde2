import { setTimeout as sleep } from "node:timers/promises";
import { UsageError } from "../errors.ts";
import { backoffDelay } from "../pg/retry.ts";
import { ApiRequestError, ApiUnavailableError } from "./mirror-errors.ts";
import { RateLimiter } from "./rate-limiter.ts";

/** The envelope's `meta` (count queries have no `results`). */
export interface ApiMeta {
  disclaimer?: string;
  terms?: string;
  license?: string;
  last_updated?: string;
  results?: { skip: number; limit: number; total: number };
  [field: string]: unknown;
}

/** One API response: `{ meta, results }`. */
export interface ApiEnvelope {
  meta: ApiMeta;
  results: unknown[];
}

export interface ApiPage {
  /** 200, or 404: zero hits (an empty result, not an outage). */
  status: number;
  envelope: ApiEnvelope;
  /** The `Link: <...>; rel="next"` URL (search_after paging), absolute. */
  next?: string;
}

export interface ApiClientOptions {
  /** "https://api.fda.gov" (no trailing path). */
  baseUrl: string;
  /** Sent as `api_key`; default: the environment variable `apiKeyEnv` (OPENFDA_API_KEY). Never printed. */
  apiKey?: string;
  apiKeyEnv?: string;
  /** Requests per minute, spread evenly (default 240, openFDA's limit). 0 = unlimited. */
  requestsPerMinute?: number;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Retries of 429, 5xx, timeouts and network errors (default 4), with capped jittered backoff. */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface ApiQuery {
  search?: string;
  sort?: string;
  limit?: number;
  skip?: number;
}

export interface ApiClientMetrics {
  requests: number;
  retries: number;
  rateLimited: number;
  serverErrors: number;
  timeouts: number;
  notFound: number;
}

export const MAX_LIMIT = 1000;
export const MAX_SKIP = 25_000;

/** A URL safe to print: the api_key parameter's value replaced. */
export function redactApiKey(url: string): string {
  return url.replace(/([?&]api_key=)[^&]*/g, "$1***");
}

/** A next-page URL without the api_key the server may echo: it goes into state files; the key is added per request. */
function withoutKey(url: URL): string {
  url.searchParams.delete("api_key");
  return url.toString();
}

/** `Link: <url>; rel="next"` -> url. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(",")) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (match) return match[1];
  }
  return undefined;
}

class RetryableResponse extends Error {
  constructor(
    message: string,
    readonly kind: "rate_limited" | "server_error" | "timeout" | "network",
    readonly retryAfterMs = 0,
  ) {
    super(message);
  }
}

/**
 * A small openFDA client: rate-limited, with a timeout per request and retries with backoff; 404 NOT_FOUND
 * is an empty envelope.
 *
 * @example
 *   const api = createApiClient({ baseUrl: "https://api.fda.gov" });
 *   const page = await api.query("device/510k", { search: 'k_number:"K872032"', limit: 1 });
 */
export function createApiClient(options: ApiClientOptions) {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new UsageError(`the API base URL "${options.baseUrl}" is not a URL`);
  }
  const apiKey = options.apiKey ?? process.env[options.apiKeyEnv ?? "OPENFDA_API_KEY"] ?? "";
  const limiter = new RateLimiter(options.requestsPerMinute ?? 240);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retries = options.retries ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 8_000;
  const metrics: ApiClientMetrics = {
    requests: 0,
    retries: 0,
    rateLimited: 0,
    serverErrors: 0,
    timeouts: 0,
    notFound: 0,
  };

  function urlFor(path: string, query: ApiQuery): string {
    const url = new URL(`${base.pathname.replace(/\/$/, "")}/${path.replace(/^\//, "")}.json`, base);
    if (query.search) url.searchParams.set("search", query.search);
    if (query.sort) url.searchParams.set("sort", query.sort);
    if (query.limit !== undefined) url.searchParams.set("limit", String(Math.min(query.limit, MAX_LIMIT)));
    if (query.skip) url.searchParams.set("skip", String(query.skip));
    return url.toString();
  }

  function withKey(url: string): string {
    if (!apiKey) return url;
    const parsed = new URL(url);
    parsed.searchParams.set("api_key", apiKey);
    return parsed.toString();
  }

  async function once(url: string, signal?: AbortSignal): Promise<ApiPage> {
    await limiter.take(signal);
    metrics.requests += 1;
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await fetch(withKey(url), {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headers: { accept: "application/json" },
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      if (timeout.aborted) {
        metrics.timeouts += 1;
        throw new RetryableResponse(`no answer within ${timeoutMs} ms`, "timeout");
      }
      throw new RetryableResponse(`request failed: ${(error as Error).message}`, "network");
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (timeout.aborted) {
        metrics.timeouts += 1;
        throw new RetryableResponse(`no complete answer within ${timeoutMs} ms`, "timeout");
      }
      throw new RetryableResponse(`response cut off: ${(error as Error).message}`, "network");
    }
    if (response.status === 429) {
      metrics.rateLimited += 1;
      const retryAfter = Number(response.headers.get("retry-after"));
      throw new RetryableResponse(
        "HTTP 429 (rate limited)",
        "rate_limited",
        Number.isFinite(retryAfter) ? retryAfter * 1000 : 0,
      );
    }
    if (response.status >= 500) {
      metrics.serverErrors += 1;
      throw new RetryableResponse(`HTTP ${response.status}`, "server_error");
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiRequestError(
        `${redactApiKey(url)} answered HTTP ${response.status} with a body that is not JSON`,
        response.status,
        redactApiKey(url),
      );
    }
    const error = (body as { error?: { code?: string; message?: string } }).error;
    if (response.status === 404 && error?.code === "NOT_FOUND") {
      metrics.notFound += 1;
      return { status: 404, envelope: { meta: {}, results: [] } };
    }
    if (response.status !== 200 || !Array.isArray((body as ApiEnvelope).results))
      throw new ApiRequestError(
        `${redactApiKey(url)} answered HTTP ${response.status}${error?.message ? `: ${error.message}` : ""}`,
        response.status,
        redactApiKey(url),
      );
    const link = nextLink(response.headers.get("link"));
    const envelope = body as ApiEnvelope;
    return {
      status: 200,
      envelope: { meta: envelope.meta ?? {}, results: envelope.results },
      ...(link ? { next: withoutKey(new URL(link, url)) } : {}),
    };
  }

  /** GET `url` (a page URL, or a Link next URL), retrying what can pass. */
  async function get(url: string, signal?: AbortSignal): Promise<ApiPage> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await once(url, signal);
      } catch (error) {
        if (!(error instanceof RetryableResponse)) throw error;
        if (attempt >= retries)
          throw new ApiUnavailableError(
            `${redactApiKey(url)}: ${error.message} (after ${attempt + 1} attempt(s))`,
            redactApiKey(url),
            attempt + 1,
          );
        metrics.retries += 1;
        const delay = Math.max(
          backoffDelay(attempt, baseDelayMs, maxDelayMs, Math.random),
          error.retryAfterMs,
        );
        if (error.kind === "rate_limited") limiter.pause(delay);
        await sleep(delay, undefined, signal ? { signal } : undefined);
      }
    }
  }

  return {
    baseUrl: base.toString(),
    urlFor,
    get,
    /** One query on an endpoint path ("device/510k"). */
    query: (path: string, query: ApiQuery = {}, signal?: AbortSignal) => get(urlFor(path, query), signal),
    metrics: (): ApiClientMetrics => ({ ...metrics }),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;
