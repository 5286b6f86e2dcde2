import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { quoteIdent, quoteQualified } from "../../src/pg/quote.ts";
import {
  type GeneratedDocuments,
  generateDocuments,
  kNumber,
  PRODUCT_CODES,
  productCode,
  SYLLABLES,
} from "../generate-documents.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { documentImportArgs, importedTable, primaryKeyColumns } from "../lib/documents.ts";
import { freshDatabase, settle } from "../lib/instance.ts";
import {
  compareKeyLookupClients,
  KEY_LOOKUP_METHODS,
  type KeyLookupMethod,
  type KeyLookupMethodResult,
  OPEN_LOOP_RATE_PER_CLIENT,
} from "../lib/key-lookup-methods.ts";
import { median, percentile, round, runMeasured } from "../lib/measure.ts";
import { failureText, parseJsonResult, pgshiftHelp, runPgshift, helpFailures } from "../lib/pgshift.ts";
import { Random } from "../lib/random.ts";
import { emptyScenario, ratio } from "../lib/result.ts";
import { type Doc, jsonContains, scanJsonDirectory } from "../lib/scan.ts";

type QueryKind = "key_lookup" | "containment" | "trigram";
const KINDS: readonly QueryKind[] = ["key_lookup", "containment", "trigram"];

interface QuerySpec {
  kind: QueryKind;
  /** Parameter for PostgreSQL. */
  param: string;
  /** The containment filter as an object, for DocumentStore.containing (built before the clock starts). */
  filter?: Record<string, unknown>;
  /** The same query over parsed documents. */
  matches: (doc: Doc) => boolean;
}

function makeQuery(kind: QueryKind, random: Random, docs: number): QuerySpec {
  if (kind === "key_lookup") {
    const key = kNumber(random.int(0, docs - 1));
    return { kind, param: key, matches: (doc) => doc.k_number === key };
  }
  if (kind === "containment") {
    const index = random.int(0, PRODUCT_CODES - 1);
    const filter = {
      product_code: productCode(index),
      openfda: { device_class: String((index % 3) + 1) },
    };
    return {
      kind,
      param: JSON.stringify(filter),
      filter,
      matches: (doc) => jsonContains(doc, filter),
    };
  }
  const brand = `${random.pick(SYLLABLES)}${random.pick(SYLLABLES)}${random.pick(SYLLABLES)}`;
  return {
    kind,
    param: `%${brand}%`,
    matches: (doc) =>
      String(doc.device_name ?? "")
        .toLowerCase()
        .includes(brand),
  };
}

interface Table {
  url: string;
  schema: string;
  table: string;
  keyColumn: string;
  loadedBy: string;
}

/** Same expression as DocumentStore.search and the import's --trgm index on /device_name. */
const DEVICE_NAME = "(doc #>> '{device_name}')";

function sqlFor(kind: QueryKind, table: Table): string {
  const name = quoteQualified(table.schema, table.table);
  if (kind === "key_lookup") return `select doc from ${name} where ${quoteIdent(table.keyColumn)} = $1`;
  if (kind === "containment") return `select doc from ${name} where doc @> $1::jsonb`;
  return `select doc from ${name} where ${DEVICE_NAME} ilike $1`;
}

/** Runs one query and returns how many documents it found. */
type Runner = (query: QuerySpec) => Promise<number>;

/** Prepared SQL through the pool: the fallback when DocumentStore is not in this build. */
function sqlRunner(pool: pg.Pool, table: Table, kind: QueryKind): Runner {
  const sql = sqlFor(kind, table);
  return async (query) =>
    (await pool.query({ name: `bench_${kind}`, text: sql, values: [query.param] })).rowCount ?? 0;
}

interface StoreLike {
  get(key: string): Promise<unknown>;
  containing(partial: Record<string, unknown>, options?: { limit?: number }): Promise<unknown[]>;
  search(text: string, options: { path: string; limit?: number }): Promise<unknown[]>;
}

/** pgshift's DocumentStore module, when this build has it. */
function storeModulePath(): string | undefined {
  const path = join(
    dirname(fileURLToPath(import.meta.url)),
    "..",
    "..",
    "src",
    "documents",
    "document-store.ts",
  );
  return existsSync(path) ? path : undefined;
}

/** pgshift's DocumentStore over the imported table, on the pool, as an application uses it. */
async function storeRunner(pool: pg.Pool, table: Table, kind: QueryKind): Promise<Runner | undefined> {
  const path = storeModulePath();
  if (!path) return undefined;
  const { DocumentStore } = (await import(pathToFileURL(path).href)) as {
    DocumentStore: new (
      pool: pg.Pool,
      options: { schema: string; table: string; keyColumns: string[] },
    ) => StoreLike;
  };
  const store = new DocumentStore(pool, {
    schema: table.schema,
    table: table.table,
    keyColumns: [table.keyColumn],
  });
  return async (query) => {
    if (kind === "key_lookup") return (await store.get(query.param)) === undefined ? 0 : 1;
    if (kind === "containment") return (await store.containing(query.filter!, { limit: 100_000 })).length;
    return (await store.search(query.param.slice(1, -1), { path: "/device_name", limit: 100_000 })).length;
  };
}

interface LatencyStats {
  clients: number;
  queries: number;
  p50_ms: number;
  p99_ms: number;
  qps: number;
}

/** Closed loop: `clients` workers, each sending its next query as soon as the previous one returns. */
async function measure(
  run: Runner,
  kind: QueryKind,
  clients: number,
  total: number,
  seed: number,
  docs: number,
): Promise<LatencyStats> {
  const random = new Random(seed);
  const queries = Array.from({ length: total }, () => makeQuery(kind, random, docs));
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < queries.length) {
        const query = queries[next++]!;
        const t0 = performance.now();
        await run(query);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    clients,
    queries: total,
    p50_ms: round(percentile(latencies, 50), 3),
    p99_ms: round(percentile(latencies, 99), 3),
    qps: Math.round(total / seconds),
  };
}

/** A document table loaded without pgshift, when its document import is not available in this build. */
async function loadWithPsql(url: string, docs: GeneratedDocuments): Promise<Table> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(
    "create table fda_docs (doc jsonb not null, k_number text generated always as (doc ->> 'k_number') stored primary key)",
  );
  await client.end();
  const run = await runMeasured(
    "bash",
    [
      "-c",
      `psql "$PGURL" -X -q -v ON_ERROR_STOP=1 -c "\\copy fda_docs (doc) from pstdin with (format csv, quote e'\\x01', delimiter e'\\x02')" < "$NDJSON"`,
    ],
    { env: { ...process.env, PGURL: url, NDJSON: docs.ndjsonPath } },
  );
  if (run.exitCode !== 0) throw new Error(`psql \\copy of the documents failed: ${failureText(run)}`);
  return {
    url,
    schema: "public",
    table: "fda_docs",
    keyColumn: "k_number",
    loadedBy: "psql \\copy (pgshift document import not available)",
  };
}

async function ensureIndexes(table: Table, notes: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: table.url });
  await client.connect();
  try {
    const indexes = await client.query<{ indexdef: string }>(
      "select indexdef from pg_indexes where schemaname = $1 and tablename = $2",
      [table.schema, table.table],
    );
    const defs = indexes.rows.map((row) => row.indexdef);
    const name = quoteQualified(table.schema, table.table);
    if (!defs.some((def) => /using gin \(doc( jsonb_path_ops)?\)/i.test(def))) {
      await client.query(`create index on ${name} using gin (doc jsonb_path_ops)`);
      notes.push(
        "The GIN (jsonb_path_ops) index on doc was created by the bench: the import did not create one.",
      );
    }
    if (!defs.some((def) => /gin_trgm_ops/i.test(def) && /device_name/.test(def))) {
      await client.query(`create index on ${name} using gin (${DEVICE_NAME} gin_trgm_ops)`);
      notes.push(
        "The trigram index on doc #>> '{device_name}' was created by the bench: the import offered no trigram option for it.",
      );
    }
    await client.query(`analyze ${name}`);
  } finally {
    await client.end();
  }
}

export interface QueriesScenarioOptions {
  name: string;
  docs: number;
  /** Use the documents and the table the ndjson scenario imported, when their size matches. */
  reuse: boolean;
}

export function queriesScenario(options: QueriesScenarioOptions): Scenario {
  return async (ctx: BenchContext) => {
    const result = emptyScenario(
      options.name,
      `Queries on ${options.docs.toLocaleString("en-US")} imported documents (key lookup, containment @>, trigram search; 1 and 20 concurrent clients) vs reading and parsing the same JSON files from disk per query.`,
    );
    let docs = options.reuse && ctx.documents?.count === options.docs ? ctx.documents : undefined;
    let table: Table | undefined = docs && ctx.documentTable ? ctx.documentTable : undefined;
    if (!docs) {
      ctx.log(`${options.name}: generating ${options.docs.toLocaleString("en-US")} documents`);
      docs = await generateDocuments({
        outDir: join(ctx.workDir, `docs-${options.name}`),
        count: options.docs,
      });
    }
    if (!table) {
      const url = await freshDatabase(ctx.instance.adminUrl, `bench_${options.name.replace(/\W/g, "_")}`);
      const help = await pgshiftHelp(ctx.repoRoot, ["import"]);
      if (help) {
        ctx.log(`${options.name}: pgshift import json:DIR`);
        const run = await runPgshift(
          ctx.repoRoot,
          documentImportArgs(help, {
            source: `json:${docs.jsonDir}`,
            url,
            table: "fda_docs",
            records: "/results",
            jobs: ctx.jobs,
            searchPath: "/device_name",
          }),
          { timeoutMs: 25 * 60_000 },
        );
        if (run.exitCode === 0) {
          const imported = importedTable(parseJsonResult(run.stdout), "fda_docs");
          const keys = await primaryKeyColumns(url, "public", imported);
          table = {
            url,
            schema: "public",
            table: imported,
            keyColumn: keys[0] ?? "k_number",
            loadedBy: "pgshift import json:DIR",
          };
          result.measurements.import = {
            wall_s: round(run.wallMs / 1000, 2),
            peak_rss_mb: run.peakTreeRssMb,
          };
        } else {
          result.notes.push(
            `pgshift import json:DIR failed (${failureText(run, 3)}); the table was loaded with psql instead.`,
          );
        }
      }
      if (!help) {
        result.notes.push(
          `pgshift's document import was not available (${helpFailures.get("import") ?? "no import command"}): the table was loaded with psql \\copy, so these query figures measure PostgreSQL, not a pgshift import.`,
        );
      }
      if (!table) table = await loadWithPsql(url, docs);
    }
    await ensureIndexes(table, result.notes);
    await settle(ctx.instance.adminUrl);
    const quick = ctx.mode === "quick";
    result.params = {
      docs: docs.count,
      json_files: docs.jsonFiles,
      loaded_by: table.loadedBy,
      key_column: table.keyColumn,
    };

    const pool = new pg.Pool({ connectionString: table.url, max: 20 });
    const stats: Record<string, Record<string, LatencyStats>> = {};
    const scans: Record<
      string,
      {
        scan_ms: number;
        scans: number;
        matches: number;
        pg_matches: number;
        results_match: boolean;
      }
    > = {};
    const runners = {} as Record<QueryKind, Runner>;
    let via = "prepared SQL (DocumentStore not in this build)";
    let storeModule: string | undefined;
    for (const kind of KINDS) {
      const store = await storeRunner(pool, table, kind);
      if (store) {
        via = "pgshift DocumentStore (get, containing, search) on a pg Pool";
        storeModule = storeModulePath();
      }
      runners[kind] = store ?? sqlRunner(pool, table, kind);
    }
    result.params.queried_through = via;
    let lookups: Record<KeyLookupMethod, KeyLookupMethodResult> | undefined;
    const lookupRounds = quick ? 2 : 3;
    const lookupSeconds = quick ? 2 : 5;
    try {
      // Warm the caches and open all 20 connections before timing anything.
      await measure(runners.key_lookup, "key_lookup", 20, 400, 1, docs.count);
      const volume: Record<QueryKind, [number, number]> = quick
        ? {
            key_lookup: [1000, 4000],
            containment: [200, 1000],
            trigram: [100, 400],
          }
        : {
            key_lookup: [3000, 10000],
            containment: [500, 2000],
            trigram: [300, 1000],
          };
      for (const kind of KINDS) {
        ctx.log(`${options.name}: ${kind} with 1 and 20 clients`);
        stats[kind] = {
          clients_1: await measure(runners[kind], kind, 1, volume[kind][0], 11, docs.count),
          clients_20: await measure(runners[kind], kind, 20, volume[kind][1], 13, docs.count),
        };
      }
      ctx.log(`${options.name}: key lookup with 20 concurrent clients, driven six ways`);
      lookups = await compareKeyLookupClients({
        target: table,
        docs: docs.count,
        inProcessLookup: (key) =>
          runners.key_lookup({ kind: "key_lookup", param: key, matches: () => false }),
        ...(storeModule ? { storeModule } : {}),
        rounds: lookupRounds,
        durationMs: lookupSeconds * 1000,
        workDir: join(ctx.workDir, `key-lookups-${options.name}`),
        log: (message) => ctx.log(`${options.name}: ${message}`),
      });
      // The cache-reading tool: every query reads and parses every file.
      const reps = docs.count >= 500_000 || quick ? 1 : 2;
      for (const kind of KINDS) {
        ctx.log(`${options.name}: scanning ${docs.jsonFiles} JSON files for one ${kind} (${reps}x)`);
        const query = makeQuery(kind, new Random(99), docs.count);
        const times: number[] = [];
        let matches = 0;
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          matches = (await scanJsonDirectory(docs.jsonDir, query.matches)).length;
          times.push(performance.now() - t0);
        }
        const pgMatches = await runners[kind](query);
        scans[kind] = {
          scan_ms: round(median(times), 1),
          scans: reps,
          matches,
          pg_matches: pgMatches,
          results_match: matches === pgMatches,
        };
        if (matches !== pgMatches) {
          result.notes.push(
            `${kind}: the file scan found ${matches} documents and PostgreSQL ${pgMatches}: results differ.`,
          );
        }
      }
    } finally {
      await pool.end();
    }

    result.measurements = {
      ...result.measurements,
      postgres: stats,
      key_lookup_20_clients: lookups,
      file_scan: scans,
    };
    const speedup = (kind: QueryKind) => scans[kind]!.scan_ms / stats[kind]!.clients_1!.p50_ms;
    result.ratios.key_lookup_speedup = ratio(
      "JSON file scan / PostgreSQL key lookup p50 (1 client)",
      speedup("key_lookup"),
      { op: ">=", value: 200 },
    );
    result.ratios.containment_speedup = ratio(
      "JSON file scan / PostgreSQL @> p50 (1 client)",
      speedup("containment"),
      { op: ">=", value: 200 },
    );
    result.ratios.trigram_speedup = ratio(
      "JSON file scan / PostgreSQL trigram ILIKE p50 (1 client)",
      speedup("trigram"),
      null,
    );
    result.ratios.key_lookup_p99_ms_20_clients = ratio(
      "key lookup p99 in ms, 20 closed-loop clients on the bench's one event loop (pg Pool of 20)",
      stats.key_lookup!.clients_20!.p99_ms,
      { op: "<", value: 2 },
    );
    result.ratios.key_lookup_p99_ms_20_threads = ratio(
      "key lookup p99 in ms, 20 closed-loop clients in 20 worker threads, 1 connection each",
      lookups?.threads.p99_ms,
      { op: "<", value: 2 },
    );
    result.ratios.key_lookup_p99_ms_pgbench_20_clients = ratio(
      "key lookup p99 in ms, pgbench -M prepared -c 20 -j 2, closed loop, same SELECT (server capability)",
      lookups?.pgbench.p99_ms,
      { op: "<", value: 2 },
    );
    const offered = OPEN_LOOP_RATE_PER_CLIENT * 20;
    result.ratios.key_lookup_p99_ms_20_clients_open_loop = ratio(
      `key lookup p99 in ms, 20 clients in 2 worker threads, open loop at ${offered.toLocaleString("en-US")}/s offered`,
      lookups?.threads_open_loop.p99_ms,
      { op: "<", value: 2 },
      `at ${offered.toLocaleString("en-US")} lookups/s offered (20 clients × ${OPEN_LOOP_RATE_PER_CLIENT}/s), latency from when each lookup was due`,
    );
    const rows: (string | number)[][] = [];
    for (const kind of KINDS) {
      const s = stats[kind]!;
      rows.push([
        kind,
        s.clients_1!.p50_ms,
        s.clients_1!.p99_ms,
        s.clients_20!.p50_ms,
        s.clients_20!.p99_ms,
        s.clients_20!.qps.toLocaleString("en-US"),
        scans[kind]!.scan_ms,
        `${round(speedup(kind), 0).toLocaleString("en-US")}×`,
        `${scans[kind]!.matches} / ${scans[kind]!.pg_matches}`,
      ]);
    }
    result.tables.push({
      title: `${docs.count.toLocaleString("en-US")} documents, latencies in ms (closed-loop clients on the bench's one event loop, pg Pool of 20)`,
      headers: [
        "query",
        "p50 1 client",
        "p99 1 client",
        "p50 20 clients",
        "p99 20 clients",
        "qps 20 clients",
        "file scan ms",
        "speed-up (scan / p50)",
        "matches scan / pg",
      ],
      rows,
    });
    if (lookups) {
      result.tables.push({
        title: `Key lookup with 20 concurrent clients, by how the clients were driven (${lookupRounds} interleaved rounds of ${lookupSeconds} s; ms)`,
        headers: ["clients", "through", "offered/s", "p50", "p99", "p99 per round", "lookups/s", "lookups"],
        rows: KEY_LOOKUP_METHODS.map((key) => {
          const m = lookups![key];
          if (m.status !== "ok") return [m.method, m.through, "", m.status, "", m.error ?? "", "", ""];
          return [
            m.method,
            m.through,
            m.offered_qps === null ? "closed loop" : m.offered_qps.toLocaleString("en-US"),
            m.p50_ms!,
            m.p99_ms!,
            m.p99_ms_runs!.join(", "),
            m.qps!.toLocaleString("en-US"),
            m.queries!.toLocaleString("en-US"),
          ];
        }),
      });
      // Little's law: with N clients in a closed loop, mean latency = N / throughput, whatever the server.
      const closed = (["in_process", "threads", "threads_2x10", "pgbench"] as const)
        .filter((key) => lookups![key].status === "ok" && lookups![key].qps)
        .map(
          (key) =>
            `${key} ${lookups![key].qps!.toLocaleString("en-US")}/s -> ${round((20 / lookups![key].qps!) * 1000, 2)} ms`,
        );
      result.notes.push(
        `A closed loop keeps all 20 clients busy: each sends its next lookup as soon as the last returns, so the mean latency is 20 / throughput (${closed.join("; ")}) and p99 sits above it. With the clients and the server on the same few cores that is a saturation test. An open loop offers a fixed rate and counts each lookup from when it was due (a late send is charged to the lookup), which is how a latency objective is normally stated; its rate is in the row.`,
      );
      for (const key of KEY_LOOKUP_METHODS) {
        const m = lookups[key];
        if (m.status !== "ok") result.notes.push(`Key lookup ${key}: ${m.status}: ${m.error ?? ""}`);
      }
    }
    result.notes.push(
      `Queries run through ${via} with up to 20 connections; the benchmark client shares the ${ctx.jobs === 2 ? "2" : "same"} cores with the server, so 20-client latencies include client-side queueing. The file scan reads ${docs.jsonFiles} JSON files of ${docs.pageSize} records each and parses every one, as a tool querying its cache does.`,
    );
    result.status = table.loadedBy.startsWith("pgshift") ? "ok" : "partial";
    return result;
  };
}
