import type { Command } from "commander";
import { ExitCode, UsageError } from "../../errors.ts";
import type { EndpointStatus } from "../../mirror/mirror-schema.ts";
import type { PullResult } from "../../mirror/pull-endpoint.ts";
import { action } from "../action.ts";
import type { CommandContext } from "../context.ts";
import { renderTable } from "../output.ts";
import { renderRefreshResult } from "./refresh-command.ts";

/** The mirror library, loaded when a mirror command runs. */
const library = () => import("../../mirror/index.ts");

interface ApiFlags {
  api: string;
  apiKeyEnv?: string;
  rate?: string;
  timeout?: string;
  retries?: string;
}

interface PullFlags extends ApiFlags {
  cache: string;
  search?: string;
  pageSize?: string;
  restart?: boolean;
  record?: boolean;
  refresh?: boolean;
}

function wholeNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

function apiOptions(flags: ApiFlags) {
  const rate = wholeNumber("--rate", flags.rate);
  const timeout = wholeNumber("--timeout", flags.timeout);
  const retries = wholeNumber("--retries", flags.retries);
  return {
    baseUrl: flags.api,
    ...(flags.apiKeyEnv ? { apiKeyEnv: flags.apiKeyEnv } : {}),
    ...(rate !== undefined ? { requestsPerMinute: rate } : {}),
    ...(timeout !== undefined ? { timeoutMs: timeout } : {}),
    ...(retries !== undefined ? { retries } : {}),
  };
}

function schemaOf(ctx: CommandContext): string {
  const schema = ctx.globals.schema;
  if (!schema) throw new UsageError("name the mirror's schema: --schema S");
  return schema;
}

function renderPull(result: PullResult): string {
  const state =
    result.status === "complete"
      ? `complete: ${result.records} records in ${result.pages} pages (${result.directory})`
      : `interrupted after ${result.records} of ${result.total ?? "?"} records; run the same command again to resume`;
  return [
    `pull ${result.endpoint}${result.resumed ? " (resumed)" : ""}: ${state}`,
    ...(result.restartedBecause ? [`started over: ${result.restartedBecause}`] : []),
    `source last_updated ${result.lastUpdated ?? "?"}, fingerprint ${result.fingerprint}, ${result.pagesThisRun} page(s) and ${result.requests} request(s) this run, ${(result.durationMs / 1000).toFixed(1)} s`,
  ].join("\n");
}

function renderStatus(rows: EndpointStatus[]): string {
  const age = (s: number | null) =>
    s === null ? "" : s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  return renderTable(
    ["endpoint", "source last_updated", "fetched at", "records", "fingerprint", "ttl", "age", "stale"],
    rows.map((r) => [
      r.endpoint,
      r.freshness?.sourceLastUpdated ?? r.freshness?.exportDate ?? "",
      r.freshness?.fetchedAt ?? "never",
      r.freshness ? String(r.freshness.recordCount) : "",
      r.freshness?.fingerprint.slice(0, 12) ?? "",
      age(r.ttlSeconds),
      age(r.ageSeconds),
      r.stale ? "STALE" : "fresh",
    ]),
  );
}

export function registerMirrorCommands(program: Command): void {
  const group = program
    .command("mirror")
    .description(
      "API mirror: pull an endpoint into a JSON cache, freshness per endpoint, refresh the live mirror",
    )
    .addHelpText(
      "after",
      "\nEndpoints: the seven openFDA device endpoints (510k, classification, event, recall, enforcement, pma, udi).\nThe API key is read from OPENFDA_API_KEY (or --api-key-env NAME) and never printed.",
    );

  const withApi = (command: Command) =>
    command
      .option("--api <url>", "the API's base URL", "https://api.fda.gov")
      .option("--api-key-env <name>", "environment variable holding the API key (default OPENFDA_API_KEY)")
      .option("--rate <n>", "requests per minute (default 240)")
      .option("--timeout <ms>", "per request (default 10000)")
      .option("--retries <n>", "retries of 429, 5xx and timeouts (default 4)");

  withApi(
    group
      .command("pull")
      .description(
        "page an endpoint into the cache (resumable); record its freshness; optionally refresh the mirror",
      )
      .argument("<endpoint>", "510k, classification, event, recall, enforcement, pma or udi")
      .requiredOption("--cache <dir>", "the JSON cache directory"),
  )
    .option("--search <expr>", "openFDA search expression (default: every record)")
    .option("--page-size <n>", "records per request (max 1000)", "1000")
    .option("--restart", "forget an unfinished pull and start over")
    .option("--no-record", "do not record freshness in the target database (offline pull)")
    .option(
      "--refresh",
      "then refresh the live mirror (--schema S) from the cache: every endpoint in one swap",
    )
    .action(
      action(async (ctx, name: string, flags: PullFlags) => {
        const { findEndpoint, OPENFDA_DEVICE_ENDPOINTS, pullEndpoint, recordFreshness, refreshMirror } =
          await library();
        const endpoint = findEndpoint(name);
        const schema = flags.refresh ? schemaOf(ctx) : undefined;
        const result = await pullEndpoint({
          api: apiOptions(flags),
          endpoint,
          cacheDir: flags.cache,
          ...(flags.search ? { search: flags.search } : {}),
          pageSize: wholeNumber("--page-size", flags.pageSize)!,
          restart: Boolean(flags.restart),
          onProgress: ctx.progress.onProgress,
          signal: ctx.signal,
        });
        ctx.progress.stop();
        if (result.status !== "complete") {
          ctx.out.result(result, () => renderPull(result));
          return ExitCode.failure;
        }
        if (flags.record !== false) await recordFreshness(await ctx.pool(), result.freshness!);
        if (!schema) {
          ctx.out.result(result, () => renderPull(result));
          return ExitCode.ok;
        }
        const refresh = await refreshMirror({
          pool: await ctx.pool({ max: 6 }),
          cacheDir: flags.cache,
          endpoints: OPENFDA_DEVICE_ENDPOINTS,
          schema,
          reason: `mirror pull ${endpoint.name}`,
          onStep: (_step, detail) => ctx.out.notice(detail),
          signal: ctx.signal,
        });
        ctx.out.result(
          { pull: result, refresh },
          () => `${renderPull(result)}\n${renderRefreshResult(refresh)}`,
        );
        return refresh.status === "switched" ? ExitCode.ok : ExitCode.mismatch;
      }),
    );

  group
    .command("download")
    .description("bulk download: read the manifest, fetch only changed partitions, unzip them into the cache")
    .argument("<endpoint>", "510k, classification, event, recall, enforcement, pma or udi")
    .requiredOption("--cache <dir>", "the JSON cache directory")
    .option("--manifest <url>", "the manifest", "https://api.fda.gov/download.json")
    .option("--no-record", "do not record freshness in the target database")
    .action(
      action(async (ctx, name: string, flags: { cache: string; manifest: string; record?: boolean }) => {
        const { downloadEndpoint, findEndpoint, recordFreshness } = await library();
        const result = await downloadEndpoint({
          manifestUrl: flags.manifest,
          endpoint: findEndpoint(name),
          cacheDir: flags.cache,
          onProgress: ctx.progress.onProgress,
          signal: ctx.signal,
        });
        ctx.progress.stop();
        if (flags.record !== false) await recordFreshness(await ctx.pool(), result.freshness);
        ctx.out.result(
          result,
          () =>
            `download ${result.endpoint}: export ${result.exportDate ?? "?"}, ${result.records} records in ${result.partitions} partitions; fetched ${result.fetched.length}, unchanged ${result.unchanged.length}, removed ${result.removed.length}; fingerprint ${result.fingerprint} (${(result.durationMs / 1000).toFixed(1)} s)`,
        );
        return ExitCode.ok;
      }),
    );

  group
    .command("refresh")
    .description(
      "build the mirror's next version from the cache, verify it, switch it live (pgshift refresh)",
    )
    .requiredOption("--cache <dir>", "the JSON cache directory")
    .option(
      "--endpoint <name>",
      "only these endpoints (repeatable; default: every endpoint in the cache)",
      (v, p: string[] = []) => [...p, v],
    )
    .option("--delta", "the cache holds only changed and new records: next = live + the cache")
    .option("--reason <text>", "why (recorded with the version)")
    .action(
      action(async (ctx, flags: { cache: string; endpoint?: string[]; delta?: boolean; reason?: string }) => {
        const { findEndpoint, OPENFDA_DEVICE_ENDPOINTS, refreshMirror } = await library();
        const endpoints = flags.endpoint?.length
          ? flags.endpoint.map((n) => findEndpoint(n))
          : OPENFDA_DEVICE_ENDPOINTS;
        const result = await refreshMirror({
          pool: await ctx.pool({ max: 6 }),
          cacheDir: flags.cache,
          endpoints,
          schema: schemaOf(ctx),
          delta: Boolean(flags.delta),
          ...(flags.reason ? { reason: flags.reason } : {}),
          onStep: (_step, detail) => ctx.out.notice(detail),
          signal: ctx.signal,
        });
        ctx.out.result(result, () =>
          [
            renderRefreshResult(result),
            ...(result.endpointsWithoutCache.length
              ? [`not in the cache (left out): ${result.endpointsWithoutCache.join(", ")}`]
              : []),
          ].join("\n"),
        );
        return result.status === "switched" ? ExitCode.ok : ExitCode.mismatch;
      }),
    );

  group
    .command("status")
    .description("per endpoint: source last_updated, fetched at, records, fingerprint, TTL, stale?")
    .option("--endpoint <name>", "only these endpoints (repeatable)", (v, p: string[] = []) => [...p, v])
    .action(
      action(async (ctx, flags: { endpoint?: string[] }) => {
        const { findEndpoint, mirrorStatus, OPENFDA_DEVICE_ENDPOINTS } = await library();
        const endpoints = flags.endpoint?.length
          ? flags.endpoint.map((n) => findEndpoint(n))
          : OPENFDA_DEVICE_ENDPOINTS;
        const rows = await mirrorStatus({ pool: await ctx.pool(), endpoints });
        ctx.out.result({ endpoints: rows }, () => renderStatus(rows));
        return ExitCode.ok;
      }),
    );

  withApi(
    group
      .command("get")
      .description(
        "read records through the fallback reader: PostgreSQL (--schema) -> cache (--cache) -> API",
      )
      .argument("<endpoint>", "the endpoint")
      .argument("<key...>", "key values (a composite key's parts separated by commas: P970051,S054)")
      .option("--cache <dir>", "the JSON cache directory"),
  ).action(
    action(async (ctx, name: string, keys: string[], flags: ApiFlags & { cache?: string }) => {
      const { createFallbackReader, findEndpoint } = await library();
      const { DocumentStore } = await import("../../documents/document-store.ts");
      const endpoint = findEndpoint(name);
      const schema = ctx.globals.schema;
      const pool = schema ? await ctx.pool({ max: 2 }) : undefined;
      const reader = createFallbackReader({
        endpoint,
        ...(pool && schema
          ? {
              pool,
              store: new DocumentStore(pool, {
                schema,
                table: endpoint.name,
                keyColumns: endpoint.key.map((k) => k.slice(1)),
              }),
            }
          : {}),
        ...(flags.cache ? { cacheDir: flags.cache } : {}),
        api: apiOptions(flags),
      });
      const answers = await reader.getMany(keys.map((k) => (endpoint.key.length > 1 ? k.split(",") : k)));
      ctx.out.result({ answers, metrics: reader.metrics() }, () =>
        answers
          .map(
            (a) =>
              `${a.key.join(",")}: ${a.doc ? "found" : "no such record"} (tier ${a.tier}${a.stale ? ", STALE" : ""}, age ${a.ageSeconds ?? "?"} s)${a.fellThrough.length ? `; ${a.fellThrough.join("; ")}` : ""}`,
          )
          .join("\n"),
      );
      return ExitCode.ok;
    }),
  );
}
