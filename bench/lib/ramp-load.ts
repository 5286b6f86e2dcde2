/**
 * Open-loop load through a whole automatic ramp on a compressed clock (the `ramp` bench scenario and
 * bench/ramp-load.ts). Requests are offered at a fixed rate whatever the latency (open loop: a slow call
 * does not slow the offer), 80 % reads and 20 % writes over `keys` task documents; latency is measured
 * from each request's scheduled time, so queueing counts. The cutover goes dual-write (backfilled) ->
 * shadow -> the ramp policy's steps ramp:25 .. ramp:100 -> next-primary, one "24h" step per tenth of
 * the run.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { createCutover, cutoverHistory } from "../../src/cutover/index.ts";
import { createPool } from "../../src/pg/pool.ts";
import { freshDatabase } from "./instance.ts";
import { percentile, round } from "./measure.ts";

interface Task {
  id: string;
  title: string;
  progress: number;
}

interface TaskStore {
  get(id: string): Promise<Task | undefined>;
  put(task: Task): Promise<void>;
}

class MemoryTaskStore implements TaskStore {
  readonly tasks = new Map<string, Task>();
  async get(id: string) {
    return this.tasks.get(id);
  }
  async put(task: Task) {
    this.tasks.set(task.id, { ...task });
  }
}

const DAY = 86_400_000;

export interface RampLoadOptions {
  adminUrl: string;
  /** Requests offered per second. */
  rate: number;
  seconds: number;
  keys: number;
}

export async function runRampLoad(options: RampLoadOptions) {
  const { rate, seconds } = options;
  const keyCount = options.keys;
  // Each ramp step ("24h") lasts a tenth of the run in real time.
  const stepRealMs = (seconds * 1000) / 10;
  const speed = DAY / stepRealMs;
  const url = await freshDatabase(options.adminUrl, "bench_ramp");
  const pool = createPool({ url, max: 16 });
  await pool.query("create table bench_tasks (id text primary key, doc jsonb not null)");
  const next: TaskStore = {
    async get(id) {
      const r = await pool.query<{ doc: Task }>({
        name: "get",
        text: "select doc from bench_tasks where id = $1",
        values: [id],
      });
      return r.rows[0]?.doc;
    },
    async put(task) {
      await pool.query({
        name: "put",
        text: "insert into bench_tasks (id, doc) values ($1, $2) on conflict (id) do update set doc = excluded.doc",
        values: [task.id, JSON.stringify(task)],
      });
    },
  };
  const legacy = new MemoryTaskStore();
  for (let i = 0; i < keyCount; i++)
    legacy.tasks.set(`t${i}`, { id: `t${i}`, title: `task ${i}`, progress: 0 });

  const realStart = Date.now();
  const clock = () => realStart + (Date.now() - realStart) * speed;
  const store = await createCutover<TaskStore>({
    name: "tasks",
    pool,
    legacy,
    next,
    reads: ["get"],
    writes: ["put"],
    reportIntervalMs: 1000,
    clock,
    env: {},
  });
  await store.cutover.setPhase("dual-write");
  // Backfill: every legacy record into next in one statement (the bench is about the ramp, not the copy).
  await pool.query(
    "insert into bench_tasks (id, doc) select x->>'id', x from jsonb_array_elements($1::jsonb) x",
    [JSON.stringify([...legacy.tasks.values()])],
  );

  const latencies: number[] = [];
  const perPhase = new Map<string, number[]>();
  let offered = 0;
  let failed = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const runStart = performance.now();
  const runEnd = runStart + seconds * 1000;
  const pending: Promise<void>[] = [];
  let policyStarted = false;
  let policy: Awaited<ReturnType<typeof store.cutover.autoRamp>> | undefined;

  // Offer requests on a 5 ms beat: each beat launches what the schedule owes, never waiting for replies.
  while (performance.now() < runEnd) {
    const now = performance.now();
    const due = Math.floor(((now - runStart) / 1000) * rate);
    while (offered < due) {
      const scheduled = runStart + (offered / rate) * 1000;
      const i = offered++;
      const key = `t${(i * 7919) % keyCount}`;
      const phase = store.cutover.phase;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const call =
        i % 5 === 0 ? store.put({ id: key, title: `task ${key}`, progress: i % 100 }) : store.get(key);
      const p = call
        .then(
          () => {
            const ms = performance.now() - scheduled;
            latencies.push(ms);
            let list = perPhase.get(phase);
            if (!list) perPhase.set(phase, (list = []));
            list.push(ms);
          },
          () => {
            failed++;
          },
        )
        .finally(() => {
          inFlight--;
        });
      if (pending.length < 10_000) pending.push(p);
      else pending[i % 10_000] = p;
    }
    const elapsed = performance.now() - runStart;
    if (!policyStarted && elapsed > stepRealMs / 2) {
      // Half a step of dual-write traffic, then shadow, then the policy takes over.
      await store.cutover.setPhase("shadow", { reason: "bench: compare before serving from next" });
      policy = await store.cutover.autoRamp({
        steps: ["ramp:25", "ramp:50", "ramp:75", "ramp:100", "next-primary"],
        every: "24h",
        tickMs: 500,
      });
      policyStarted = true;
    }
    await sleep(5);
  }
  await Promise.all(pending);
  await policy?.stop();
  await store.cutover.shadowsSettled();
  const metrics = store.cutover.metrics();
  await store.cutover.close();
  const history = await cutoverHistory(pool, "tasks", 50);
  const figure = (values: number[]) => ({
    calls: values.length,
    p50_ms: round(percentile(values, 50), 3),
    p95_ms: round(percentile(values, 95), 3),
    p99_ms: round(percentile(values, 99), 3),
  });
  await pool.end();
  return {
    rateOffered: rate,
    seconds,
    keys: keyCount,
    clockSpeed: round(speed, 0),
    offered,
    completed: latencies.length,
    failed,
    maxInFlight,
    achievedRate: round(latencies.length / seconds, 1),
    overall: figure(latencies),
    perPhase: Object.fromEntries([...perPhase].map(([phase, values]) => [phase, figure(values)])),
    shadow: metrics.shadow,
    finalPhase: history.at(-1)?.to,
    rampSteps: history
      .filter((h) => h.reason?.startsWith("auto:"))
      .map((h) => ({ at: h.at, from: h.from, to: h.to, reason: h.reason })),
  };
}
