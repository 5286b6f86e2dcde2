import { existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { BenchContext } from "../lib/context.ts";
import { freshDatabase } from "../lib/instance.ts";
import { percentile, round } from "../lib/measure.ts";
import { Random } from "../lib/random.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";

interface Task {
  id: string;
  title: string;
  status: string;
  progress: number;
  tags: string[];
  updatedAt: string;
}

/** The interface both sides implement: an agent task store keyed by id. */
interface TaskStore {
  get(id: string): Promise<Task | undefined>;
  put(task: Task): Promise<void>;
}

/** The legacy side: the in-process Map store applications start with. */
class MemoryTaskStore implements TaskStore {
  private readonly tasks = new Map<string, Task>();
  async get(id: string): Promise<Task | undefined> {
    return this.tasks.get(id);
  }
  async put(task: Task): Promise<void> {
    this.tasks.set(task.id, task);
  }
}

/** The next side: PostgreSQL, one jsonb document per key, prepared statements. */
class PostgresTaskStore implements TaskStore {
  constructor(private readonly pool: pg.Pool) {}
  async get(id: string): Promise<Task | undefined> {
    const result = await this.pool.query<{ doc: Task }>({
      name: "bench_task_get",
      text: "select doc from bench_tasks where id = $1",
      values: [id],
    });
    return result.rows[0]?.doc;
  }
  async put(task: Task): Promise<void> {
    await this.pool.query({
      name: "bench_task_put",
      text: "insert into bench_tasks (id, doc) values ($1, $2) on conflict (id) do update set doc = excluded.doc",
      values: [task.id, JSON.stringify(task)],
    });
  }
}

function makeTask(random: Random, index: number): Task {
  return {
    id: `task-${index}`,
    title: `Task ${index}: ${random.pick(["index", "migrate", "review", "deploy", "backfill"])}`,
    status: random.pick(["queued", "running", "done", "failed"]),
    progress: random.int(0, 100),
    tags: [random.pick(["a", "b", "c"]), random.pick(["x", "y"])],
    updatedAt: new Date(Date.UTC(2026, 0, 1) + index * 1000).toISOString(),
  };
}

interface Latency {
  p50_ms: number;
  p99_ms: number;
  calls: number;
}

/**
 * Sequential calls paced by a 1 ms pause, as an application serving requests makes them (the pause
 * lets background shadow reads finish instead of piling up and being skipped).
 */
async function time(calls: number, fn: (i: number) => Promise<unknown>): Promise<Latency> {
  const latencies: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await fn(i);
    latencies.push(performance.now() - t0);
    await sleep(1);
  }
  return {
    p50_ms: round(percentile(latencies, 50), 4),
    p99_ms: round(percentile(latencies, 99), 4),
    calls,
  };
}

/**
 * Two kinds of call alternated in one loop (a, b, a, b, ...), so both see the same moments of the shared
 * machine: the fair way to compare a call with and without the wrapper.
 */
async function timePair(
  calls: number,
  a: (i: number) => Promise<unknown>,
  b: (i: number) => Promise<unknown>,
): Promise<[Latency, Latency]> {
  const latencies: [number[], number[]] = [[], []];
  for (let i = 0; i < calls; i++) {
    for (const [side, fn] of [a, b].entries()) {
      const t0 = performance.now();
      await fn(i);
      latencies[side]!.push(performance.now() - t0);
      await sleep(1);
    }
  }
  const summary = (values: number[]): Latency => ({
    p50_ms: round(percentile(values, 50), 4),
    p99_ms: round(percentile(values, 99), 4),
    calls,
  });
  return [summary(latencies[0]), summary(latencies[1])];
}

interface BlockLatency extends Latency {
  /** Event-loop CPU (user + system) of the whole process per call, background work included. */
  cpu_us_per_call: number;
  blocks: number;
}

/**
 * Kinds of call measured in short alternating blocks (the order rotates every block: a b c, b c a,
 * c a b, ..., so each kind sees the same moments of the shared machine and follows each other kind
 * equally often), each call paced by a 1 ms pause as in `time`. Blocks rather than single calls so
 * that a shadow-phase call always follows a shadow-phase call, whose background work (the other
 * side's read, the comparison, the metrics) shares the event loop and the machine with it, as in a
 * service in the shadow phase: `settle` runs between blocks so no block starts with another kind's
 * leftovers, and each block starts with one untimed call of its kind. The process's CPU time per call
 * is recorded too: it shows what the background work costs even when it stays off the caller's path.
 */
async function timeBlocks(
  calls: number,
  blockSize: number,
  kinds: readonly ((i: number) => Promise<unknown>)[],
  settle: () => Promise<void>,
): Promise<BlockLatency[]> {
  const latencies = kinds.map((): number[] => []);
  const cpuUs = kinds.map(() => 0);
  const blocks = Math.ceil(calls / blockSize);
  for (let block = 0; block < blocks; block++) {
    for (let k = 0; k < kinds.length; k++) {
      const kind = (block + k) % kinds.length;
      const fn = kinds[kind]!;
      await settle();
      const cpu = process.cpuUsage();
      await fn(block * blockSize);
      await sleep(1);
      for (let j = 0; j < blockSize && block * blockSize + j < calls; j++) {
        const i = block * blockSize + j;
        const t0 = performance.now();
        await fn(i);
        latencies[kind]!.push(performance.now() - t0);
        await sleep(1);
      }
      // Background work a block started belongs to it.
      await settle();
      const used = process.cpuUsage(cpu);
      cpuUs[kind]! += used.user + used.system;
    }
  }
  return kinds.map((_, kind) => ({
    p50_ms: round(percentile(latencies[kind]!, 50), 4),
    p99_ms: round(percentile(latencies[kind]!, 99), 4),
    calls,
    cpu_us_per_call: round(cpuUs[kind]! / (calls + blocks), 1),
    blocks,
  }));
}

/** Dual-write and shadow-read overhead of pgshift's cutover wrapper over an in-memory store and PostgreSQL. */
export async function cutoverScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const result = emptyScenario(
    "cutover",
    "Cutover overhead: a caller's p50 through pgshift's dual-write and shadow phases vs each side alone (legacy = in-process Map store, next = PostgreSQL jsonb table).",
  );
  const dualTarget = { op: "<=" as const, value: 1.2 };
  const shadowTarget = { op: "<=" as const, value: 1.2 };
  if (!existsSync(join(ctx.repoRoot, "src", "cutover", "create-cutover.ts"))) {
    result.status = "not available";
    result.notes.push("not available: the cutover library (src/cutover) is not in this build.");
    result.ratios.dual_write_p50_vs_slower_side = ratio(
      "dual-write p50 / slower side alone p50",
      null,
      dualTarget,
    );
    result.ratios.shadow_read_p50_vs_legacy_only = ratio(
      "shadow-phase read p50 / legacy-only read p50",
      null,
      shadowTarget,
    );
    return result;
  }
  const { createCutover } = await import("../../src/cutover/index.ts");
  const { ShadowQueue } = await import("../../src/cutover/shadow-queue.ts");
  const calls = ctx.mode === "quick" ? 1_000 : 5_000;
  const shadowBlockCalls = 25;
  const url = await freshDatabase(ctx.instance.adminUrl, "bench_cutover");
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  try {
    await pool.query("create table bench_tasks (id text primary key, doc jsonb not null)");
    const legacy = new MemoryTaskStore();
    const next = new PostgresTaskStore(pool);
    const random = new Random(5);
    const tasks = Array.from({ length: calls }, (_, i) => makeTask(random, i));
    const warm = async (store: TaskStore) => {
      for (let i = 0; i < 200; i++) await store.put(makeTask(random, calls + i));
    };
    await warm(legacy);
    await warm(next);
    ctx.log(`cutover: each side alone (${calls} writes, ${calls} reads)`);
    const legacyWrite = await time(calls, (i) => legacy.put(tasks[i]!));
    const nextWrite = await time(calls, (i) => next.put(tasks[i]!));
    const legacyRead = await time(calls, (i) => legacy.get(tasks[i]!.id));
    const nextRead = await time(calls, (i) => next.get(tasks[i]!.id));

    const store = await createCutover<TaskStore>({
      name: "bench_tasks",
      pool,
      legacy,
      next,
      reads: ["get"],
      writes: ["put"],
      keyOf: (_method, args) => (typeof args[0] === "string" ? args[0] : (args[0] as Task).id),
      labels: { legacy: "memory", next: "postgres bench_tasks" },
      reportIntervalMs: 0,
    });
    // Held in legacy-only over the same two stores, to alternate with the shadow phase.
    const legacyOnlyStore = await createCutover<TaskStore>({
      name: "bench_tasks_legacy_only",
      pool,
      legacy,
      next,
      reads: ["get"],
      writes: ["put"],
      keyOf: (_method, args) => (typeof args[0] === "string" ? args[0] : (args[0] as Task).id),
      reportIntervalMs: 0,
    });
    let phases: Record<string, Latency> = {};
    let alternated:
      | {
          legacy_only_read: BlockLatency;
          shadow_read: BlockLatency;
          legacy_only_read_with_background_next_read: BlockLatency;
        }
      | undefined;
    let shadowCounts: Record<string, number> = {};
    try {
      ctx.log("cutover: legacy-only, dual-write and shadow phases through the wrapper");
      const legacyOnlyRead = await time(calls, (i) => store.get(tasks[i]!.id));
      const legacyOnlyWrite = await time(calls, (i) => store.put(tasks[i]!));
      await store.cutover.setPhase("dual-write", { reason: "bench" });
      // Both sides update rows that exist (the same work), alternated call by call.
      const [nextWriteAlongside, dualWrite] = await timePair(
        calls,
        (i) => next.put({ ...tasks[i]!, progress: (tasks[i]!.progress + 1) % 101 }),
        (i) => store.put({ ...tasks[i]!, progress: (tasks[i]!.progress + 2) % 101 }),
      );
      await store.cutover.setPhase("shadow", { reason: "bench" });
      // The first calls after the switch, as the earlier runs measured them: the shadow branch of
      // the wrapper and the comparison code are still being compiled (read() is deoptimized when the
      // phase first turns on shadowing), and nothing runs alongside to share the machine's moments.
      const shadowReadFirst = await time(calls, (i) => store.get(tasks[i]!.id));
      ctx.log("cutover: legacy-only and shadow reads through the wrapper, alternating blocks");
      // The third kind attributes the difference: a legacy-only read followed by the same PostgreSQL
      // read the shadow makes, queued the same way (the wrapper's shadow queue) but not compared.
      let backgroundReadErrors = 0;
      const backgroundReads = new ShadowQueue<string>(
        64,
        async (id) => {
          await next.get(id);
        },
        () => backgroundReadErrors++,
      );
      const kinds = [
        (i: number) => legacyOnlyStore.get(tasks[i]!.id),
        (i: number) => store.get(tasks[i]!.id),
        async (i: number) => {
          const task = await legacyOnlyStore.get(tasks[i]!.id);
          backgroundReads.offer(tasks[i]!.id);
          return task;
        },
      ];
      const settle = async () => {
        await store.cutover.shadowsSettled();
        await backgroundReads.idle();
        await sleep(2);
      };
      // Untimed round first: every kind of call warm (compiled) before any is measured.
      await timeBlocks(Math.min(calls, 1_000), shadowBlockCalls, kinds, settle);
      const [legacyOnlyAlternated, shadowAlternated, backgroundAlternated] = await timeBlocks(
        calls,
        shadowBlockCalls,
        kinds,
        settle,
      );
      if (backgroundReadErrors > 0)
        throw new Error(`${backgroundReadErrors} background PostgreSQL reads failed; see the server log`);
      alternated = {
        legacy_only_read: legacyOnlyAlternated!,
        shadow_read: shadowAlternated!,
        legacy_only_read_with_background_next_read: backgroundAlternated!,
      };
      await store.cutover.shadowsSettled();
      const metrics = store.cutover.metrics();
      shadowCounts = { ...metrics.shadow };
      phases = {
        legacy_only_read: legacyOnlyRead,
        legacy_only_write: legacyOnlyWrite,
        dual_write: dualWrite,
        next_write_alongside_dual_write: nextWriteAlongside,
        shadow_read: shadowReadFirst,
      };
    } finally {
      await store.cutover.close();
      await legacyOnlyStore.cutover.close();
    }
    const slowerWrite = Math.max(legacyWrite.p50_ms, phases.next_write_alongside_dual_write!.p50_ms);
    result.params = { calls_per_measurement: calls, pacing_ms: 1, shadow_block_calls: shadowBlockCalls };
    result.measurements = {
      alone: {
        legacy_write: legacyWrite,
        next_write: nextWrite,
        legacy_read: legacyRead,
        next_read: nextRead,
      },
      through_cutover: phases,
      alternated_blocks: alternated,
      shadow: shadowCounts,
    };
    result.ratios.dual_write_p50_vs_slower_side = ratio(
      "dual-write p50 / slower side alone (PostgreSQL update, alternated call by call) p50",
      phases.dual_write!.p50_ms / slowerWrite,
      dualTarget,
    );
    const shadowBlocks = alternated!.shadow_read;
    const legacyOnlyBlocks = alternated!.legacy_only_read;
    const backgroundBlocks = alternated!.legacy_only_read_with_background_next_read;
    result.ratios.shadow_read_p50_vs_legacy_only = ratio(
      "shadow-phase read p50 / legacy-only read p50 (both through the wrapper, warm, alternating blocks)",
      shadowBlocks.p50_ms / legacyOnlyBlocks.p50_ms,
      shadowTarget,
    );
    const us = (ms: number) => round(ms * 1000, 1);
    result.tables.push({
      title: `Caller latency, ${calls.toLocaleString("en-US")} sequential calls each (µs)`,
      headers: ["call", "p50 µs", "p99 µs"],
      rows: [
        ["legacy (Map) write alone", us(legacyWrite.p50_ms), us(legacyWrite.p99_ms)],
        [
          "next (PostgreSQL) insert alone (first write of each key)",
          us(nextWrite.p50_ms),
          us(nextWrite.p99_ms),
        ],
        [
          "next (PostgreSQL) update alone, alternated with the dual-write",
          us(phases.next_write_alongside_dual_write!.p50_ms),
          us(phases.next_write_alongside_dual_write!.p99_ms),
        ],
        ["dual-write through cutover", us(phases.dual_write!.p50_ms), us(phases.dual_write!.p99_ms)],
        ["legacy (Map) read alone", us(legacyRead.p50_ms), us(legacyRead.p99_ms)],
        ["next (PostgreSQL) read alone", us(nextRead.p50_ms), us(nextRead.p99_ms)],
        [
          "legacy-only read through cutover (alternating blocks)",
          us(legacyOnlyBlocks.p50_ms),
          us(legacyOnlyBlocks.p99_ms),
        ],
        [
          "shadow-phase read through cutover (alternating blocks)",
          us(shadowBlocks.p50_ms),
          us(shadowBlocks.p99_ms),
        ],
        [
          "legacy-only read through cutover + the same PostgreSQL read in the background, not compared (alternating blocks)",
          us(alternated!.legacy_only_read_with_background_next_read.p50_ms),
          us(alternated!.legacy_only_read_with_background_next_read.p99_ms),
        ],
        [
          "legacy-only read through cutover, first calls (cold, not alternated)",
          us(phases.legacy_only_read!.p50_ms),
          us(phases.legacy_only_read!.p99_ms),
        ],
        [
          "shadow-phase read through cutover, first calls after the switch (cold, not alternated)",
          us(phases.shadow_read!.p50_ms),
          us(phases.shadow_read!.p99_ms),
        ],
      ],
    });
    result.notes.push(
      `Shadow ratio method: two wrappers over the same Map and PostgreSQL stores, one held in legacy-only, one in shadow; after an untimed warm-up round, ${calls.toLocaleString("en-US")} sequential calls each in alternating blocks of ${shadowBlockCalls} (order rotated every block), each call paced by 1 ms as in the other rows. Each block starts with one untimed call of its kind, so every timed shadow-phase call follows a shadow-phase call whose background read and comparison share the event loop with it; between blocks the shadow work is let finish. The caller's latency is the time from the call to its awaited result. The "first calls" rows are the cold measurement earlier runs reported: taken right after the phase switch, when the wrapper's shadow branch is still being compiled, and not alternated.`,
      `Where a shadow-phase read's extra time comes from: a legacy-only read followed by the same PostgreSQL read, queued as the shadow's is but not compared, has p50 ${us(backgroundBlocks.p50_ms)} µs (${round(backgroundBlocks.p50_ms / legacyOnlyBlocks.p50_ms, 2)}x legacy-only; shadow is ${round(shadowBlocks.p50_ms / backgroundBlocks.p50_ms, 2)}x this). On the caller's path the shadow phase only queues a record; the PostgreSQL read it causes runs between the caller's calls (client work in this process, the server on the same cores), and the uncompared background read shows how much of the difference that read alone makes.`,
      `Shadow work is off the caller's path, not free: event-loop CPU per read (whole process, background work included) ${legacyOnlyBlocks.cpu_us_per_call} µs in legacy-only, ${backgroundBlocks.cpu_us_per_call} µs with the uncompared background read, ${shadowBlocks.cpu_us_per_call} µs in shadow; a busy service pays it as throughput, not as this caller's latency.`,
      `Shadow comparisons: ${shadowCounts.started ?? 0} started, ${shadowCounts.matched ?? 0} matched, ${shadowCounts.mismatched ?? 0} mismatched, ${shadowCounts.skipped ?? 0} skipped. Legacy reads take microseconds, so the shadow ratio is sensitive to any work on the caller's event loop.`,
    );
  } finally {
    await pool.end();
  }
  return result;
}
