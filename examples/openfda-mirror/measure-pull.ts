// `node bin/run-ts.js examples/openfda-mirror/measure-pull.ts` — the pull target: 100k records from the fake
// API at openFDA's rate (240 requests/min, 1000 records a page), the CLI killed with SIGKILL after 40 pages,
// then resumed; prints the timings and whether every record is in the cache exactly once.
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeApi } from "./fake-api.ts";
import { generateRecords } from "./generate-records.ts";
import { findEndpoint } from "../../src/mirror/endpoints.ts";

const N = Number(process.env.MIRROR_RECORDS ?? 100_000);
const api = await startFakeApi({
  rateLimit: { requests: 240, windowMs: 60_000 },
  data: [{ endpoint: findEndpoint("510k"), records: generateRecords("510k", N) }],
});
const cache = await mkdtemp(join(tmpdir(), "pull100k-"));
const args = [
  fileURLToPath(new URL("../../bin/pgshift.js", import.meta.url)),
  "mirror",
  "pull",
  "510k",
  "--cache",
  cache,
  "--api",
  api.url,
  "--rate",
  "240",
  "--no-record",
  "--json",
];
const t0 = Date.now();
const child = spawn(process.execPath, args, { stdio: "ignore" });
const closed = new Promise((r) => child.on("close", r));
const state = join(cache, "510k", ".pull-state.json");
for (;;) {
  const pages = await readFile(state, "utf8").then(
    (t) => JSON.parse(t).pages,
    () => 0,
  );
  if (pages >= 40) break;
  await new Promise((r) => setTimeout(r, 50));
}
child.kill("SIGKILL");
await closed;
const killedAt = JSON.parse(await readFile(state, "utf8")).pages;
const t1 = Date.now();
const resumed = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
let out = "";
resumed.stdout.on("data", (d) => (out += d));
await new Promise((r) => resumed.on("close", r));
const t2 = Date.now();
const result = JSON.parse(out);
const keys: string[] = [];
for (const name of (await readdir(join(cache, "510k", "pages"))).sort())
  for (const r of JSON.parse(await readFile(join(cache, "510k", "pages", name), "utf8")).results)
    keys.push(r.k_number);
console.log(
  JSON.stringify({
    killedAfterPages: killedAt,
    firstRunS: (t1 - t0) / 1000,
    resumeS: (t2 - t1) / 1000,
    resumedPages: result.pagesThisRun,
    records: result.records,
    filesRecords: keys.length,
    distinct: new Set(keys).size,
    fakeApi: api.stats,
  }),
);
await api.close();
