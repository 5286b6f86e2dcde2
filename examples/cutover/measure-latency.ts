// `node bin/run-ts.js examples/cutover/measure-latency.ts [--ops N]` — what the cutover wrapper costs
// the caller: dual-write p50 against the slower side alone, and a read's p50 with and without shadow
// reads. Side by side in one run, rounds interleaved, since the machine is shared and noisy.
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { loadSettings } from "../../src/config/settings.ts";
import { createCutover } from "../../src/cutover/index.ts";
import { resolveTarget } from "../../src/local/target.ts";
import { createPool } from "../../src/pg/pool.ts";

interface Kv {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
}

const opsArg = process.argv.indexOf("--ops");
const ops = opsArg > 0 ? Number(process.argv[opsArg + 1]) : 3000;

const { settings } = loadSettings({});
const target = await resolveTarget(settings, (line) => console.error(line));
const pool = createPool({ url: target.url, max: 4, applicationName: "cutover-latency" });
await pool.query("drop table if exists cutover_latency_kv");
await pool.query("create table cutover_latency_kv (key text primary key, value jsonb not null)");

const memory = new Map<string, unknown>();
const legacy: Kv = {
  get: async (key) => memory.get(key),
  put: async (key, value) => {
    memory.set(key, value);
  },
};
const next: Kv = {
  get: async (key) =>
    (await pool.query("select value from cutover_latency_kv where key = $1", [key])).rows[0]?.value,
  put: async (key, value) => {
    await pool.query(
      "insert into cutover_latency_kv (key, value) values ($1, $2) on conflict (key) do update set value = excluded.value",
      [key, JSON.stringify(value)],
    );
  },
};
// Two cutovers over the same stores, one per phase compared, so operations can alternate one by one.
const open = (name: string) =>
  createCutover<Kv>({
    name,
    pool,
    legacy,
    next,
    reads: ["get"],
    writes: ["put"],
    reportIntervalMs: 0,
    shadow: { maxInFlight: 4096 },
  });
const store = await open("latency");
const plain = await open("latency_plain");
await plain.cutover.setPhase("dual-write");
const samples: Record<string, number[]> = {};
async function measure(name: string, fn: (i: number) => Promise<unknown>, count: number): Promise<void> {
  const list = (samples[name] ??= []);
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await fn(i);
    list.push(performance.now() - started);
  }
}
function pct(list: number[], q: number): number {
  const sorted = [...list].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! * 1000) / 1000;
}
const doc = (i: number) => ({ id: i, title: `task ${i}`, status: "running", progress: i % 100 });

// Warm up connections and plans.
await store.cutover.setPhase("dual-write");
await measure("warmup", (i) => store.put(`k${i}`, doc(i)), 500);
for (let i = 0; i < 1000; i++) memory.set(`k${i}`, (await next.get(`k${i}`)) ?? doc(i));

// Writes: the three variants alternate operation by operation (rotating which goes first).
const writers: [string, (i: number) => Promise<unknown>][] = [
  ["write: next alone", (i) => next.put(`k${i % 1000}`, doc(i))],
  ["write: legacy alone", (i) => legacy.put(`k${i % 1000}`, doc(i))],
  ["write: dual-write via cutover", (i) => store.put(`k${i % 1000}`, doc(i))],
];
for (let i = 0; i < ops; i++)
  for (let j = 0; j < writers.length; j++) {
    const [name, fn] = writers[(i + j) % writers.length]!;
    await measure(name, () => fn(i), 1);
  }

// Reads: "plain" is back in legacy-only, "store" in shadow; alternate, pausing now and then so the
// queued shadow reads run (and compete with the caller, as they would in production).
await plain.cutover.setPhase("legacy-only");
await store.cutover.setPhase("shadow");
for (let i = 0; i < ops; i++) {
  const first = i % 2 === 0;
  await measure(
    first ? "read: legacy-only via cutover" : "read: shadow via cutover",
    () => (first ? plain : store).get(`k${i % 1000}`),
    1,
  );
  await measure(
    first ? "read: shadow via cutover" : "read: legacy-only via cutover",
    () => (first ? store : plain).get(`k${i % 1000}`),
    1,
  );
  if (i % 50 === 49) await sleep(5);
}
await sleep(300);
const shadow = store.cutover.metrics();
await store.cutover.close();
await plain.cutover.close();
await pool.query("drop table cutover_latency_kv");
// Leave the target as it was: this script's two cutovers are measurement scaffolding.
for (const table of ["cutover_instances", "cutover_repairs", "cutover_verifications", "cutover_backfills"])
  await pool.query(`delete from pgshift.${table} where cutover = any($1)`, [["latency", "latency_plain"]]);
await pool.query("delete from pgshift.cutovers where name = any($1)", [["latency", "latency_plain"]]);
await pool.end();

const table = Object.entries(samples)
  .filter(([name]) => name !== "warmup")
  .map(([name, list]) => ({
    name,
    n: list.length,
    p50: pct(list, 0.5),
    p95: pct(list, 0.95),
    p99: pct(list, 0.99),
  }));
const p50 = (name: string) => table.find((r) => r.name === name)!.p50;
const slower = Math.max(p50("write: next alone"), p50("write: legacy alone"));
const result = {
  ops,
  rows: table,
  dualWriteOverSlowerSide: Math.round((p50("write: dual-write via cutover") / slower) * 100) / 100,
  shadowReadOverPlainRead:
    Math.round((p50("read: shadow via cutover") / p50("read: legacy-only via cutover")) * 100) / 100,
  shadowCounts: shadow.shadow,
};
for (const row of table)
  console.log(`${row.name.padEnd(32)} n=${row.n}  p50=${row.p50} ms  p95=${row.p95} ms  p99=${row.p99} ms`);
console.log(`dual-write p50 / slower side alone p50: ${result.dualWriteOverSlowerSide}x (target <= 1.2x)`);
console.log(
  `read p50 with shadow / without: ${result.shadowReadOverPlainRead}x; shadow reads started ${shadow.shadow.started}, compared ${shadow.shadow.matched + shadow.shadow.mismatched + shadow.shadow.raced} (${shadow.shadow.mismatched} mismatched, ${shadow.shadow.skipped} skipped)`,
);
console.log(JSON.stringify(result));
