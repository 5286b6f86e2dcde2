// End-to-end live migration of two in-memory stores to PostgreSQL while "the application" keeps
// serving: every phase, backfill, verification, a rollback drill, an outage repaired from the ledger,
// and the status endpoint reporting each store's phase, write/read targets and pool state.
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import {
  type AsyncMapLike,
  type CutoverControl,
  type CutoverPhase,
  type CutoverStore,
  type CutoverVerifyResult,
  createCutover,
  createMapCutover,
  documentSink,
} from "../../src/cutover/index.ts";
import { DocumentStore } from "../../src/documents/document-store.ts";
import { createPool } from "../../src/pg/pool.ts";
import { type StatusReport, startStatusServer } from "../../src/serve/index.ts";
import {
  type GraphStore,
  graphAccess,
  graphSink,
  MemoryGraphStore,
  memoryNodes,
  PgGraphStore,
} from "./graph-store.ts";

export interface Task extends Record<string, unknown> {
  id: string;
  title: string;
  status: "queued" | "running" | "done" | "failed";
  /** 0..100 */
  progress: number;
  project: string;
}

export interface ExampleOptions {
  url: string;
  log: (line: string) => void;
  tasks?: number;
  projects?: number;
}

export interface ExampleResult {
  phases: { tasks: CutoverPhase; graph: CutoverPhase }[];
  verifications: { store: string; phase: string; keys: number; divergent: number; repaired: number }[];
  writes: number;
  reads: number;
  trafficErrors: number;
  repairsClosed: number;
  statusUrl: string;
  finalStatus: StatusReport;
  rows: { tasks: number; projects: number; edges: number };
}

function seed(taskCount: number, projectCount: number) {
  const tasks = new Map<string, Task>();
  const graph = new MemoryGraphStore();
  for (let p = 0; p < projectCount; p++) {
    const id = `p${String(p).padStart(3, "0")}`;
    graph.projects.set(id, { id, name: `project ${p}`, owner: ["ada", "grace", "linus"][p % 3]! });
    // Each project depends on up to two earlier ones: a DAG.
    const deps = new Set<string>();
    if (p > 0) deps.add(`p${String(Math.floor(p / 2)).padStart(3, "0")}`);
    if (p > 2) deps.add(`p${String(p - 3).padStart(3, "0")}`);
    if (deps.size) graph.edges.set(id, deps);
  }
  for (let t = 0; t < taskCount; t++) {
    const id = `t${String(t).padStart(5, "0")}`;
    tasks.set(id, {
      id,
      title: `task ${t}`,
      status: (["queued", "running", "done", "failed"] as const)[t % 4]!,
      progress: (t * 13) % 101,
      project: `p${String(t % projectCount).padStart(3, "0")}`,
    });
  }
  return { tasks, graph };
}

/** The application's traffic: reads and writes on both stores until stopped. */
function startTraffic(
  tasks: CutoverStore<AsyncMapLike<Task>>,
  graph: CutoverStore<GraphStore>,
  taskCount: number,
  projectCount: number,
) {
  const counters = { writes: 0, reads: 0, errors: 0 };
  let stop = false;
  let seq = 0;
  const loop = async () => {
    while (!stop) {
      const n = seq++;
      const taskId = `t${String(n % taskCount).padStart(5, "0")}`;
      const projectId = `p${String(n % projectCount).padStart(3, "0")}`;
      try {
        if (n % 3 === 0) {
          // An agent advances a task: read-modify-write on the task store.
          const task = await tasks.get(taskId);
          counters.reads++;
          if (task) {
            const progress = Math.min(100, task.progress + 5);
            await tasks.set(taskId, { ...task, progress, status: progress === 100 ? "done" : "running" });
            counters.writes++;
          }
        } else if (n % 3 === 1) {
          await graph.getProject(projectId);
          await graph.dependenciesOf(projectId);
          counters.reads += 2;
        } else if (n % 17 === 2) {
          await graph.putProject({
            id: projectId,
            name: `project ${projectId} (renamed ${n})`,
            owner: "ada",
          });
          counters.writes++;
        } else {
          await tasks.has(taskId);
          counters.reads++;
        }
      } catch {
        counters.errors++;
      }
      await sleep(2);
    }
  };
  const workers = [loop(), loop()];
  return {
    counters,
    async stop() {
      stop = true;
      await Promise.all(workers);
    },
  };
}

export async function runCutoverExample(options: ExampleOptions): Promise<ExampleResult> {
  const { log } = options;
  const taskCount = options.tasks ?? 2_000;
  const projectCount = options.projects ?? 120;
  const pool: pg.Pool = createPool({ url: options.url, max: 8, applicationName: "cutover-example" });
  const legacy = seed(taskCount, projectCount);
  log(
    `legacy stores in memory: ${legacy.tasks.size} tasks, ${legacy.graph.projects.size} projects with ${[...legacy.graph.edges.values()].reduce((n, s) => n + s.size, 0)} dependency edges`,
  );

  const documents = new DocumentStore<Task>(pool, { table: "tasks" });
  await documents.ensureTable();
  const pgGraph = new PgGraphStore(pool);
  await pgGraph.ensureTables();

  // The application now talks to `tasks` and `graph`, the cutover wrappers, instead of the stores.
  const tasks = await createMapCutover<Task>({ name: "tasks", pool, legacy: legacy.tasks, next: documents });
  const graph = await createCutover<GraphStore>({
    name: "graph",
    pool,
    legacy: legacy.graph,
    next: pgGraph,
    reads: ["getProject", "dependenciesOf"],
    writes: ["putProject", "deleteProject", "addDependency", "removeDependency"],
    keyAccess: graphAccess,
    labels: { legacy: "in-memory graph", next: "postgresql projects + project_dependencies" },
  });
  const cutovers = [tasks.cutover, graph.cutover] as CutoverControl<object>[];
  const server = await startStatusServer({ pool, cutovers });
  log(`status endpoint: ${server.url}/status (also /metrics, /healthz, /readyz)`);

  const result: ExampleResult = {
    phases: [],
    verifications: [],
    writes: 0,
    reads: 0,
    trafficErrors: 0,
    repairsClosed: 0,
    statusUrl: `${server.url}/status`,
    finalStatus: {
      status: "ok",
      database: { target: "", pool: { totalCount: 0, idleCount: 0, waitingCount: 0 } },
      cutovers: [],
    },
    rows: { tasks: 0, projects: 0, edges: 0 },
  };

  const report = async () => {
    const status = (await (await fetch(`${server.url}/status`)).json()) as StatusReport;
    for (const c of status.cutovers) {
      const writes = c.writeTargets.map((t) => `${t.side}${t.authoritative ? "*" : ""}`).join(" -> ");
      const reads = c.readTargets.map((t) => `${t.side} ${t.percent}%`).join(", ");
      log(
        `  /status ${c.name.padEnd(5)} phase=${c.phase.padEnd(12)} writes=${writes.padEnd(15)} reads=${reads.padEnd(22)} shadow=${c.shadow.matched}/${c.shadow.mismatched}/${c.shadow.errors} (match/mismatch/error) pool total=${c.pool.totalCount} idle=${c.pool.idleCount} waiting=${c.pool.waitingCount}`,
      );
    }
    result.finalStatus = status;
    result.phases.push({
      tasks: status.cutovers[0]!.phase as CutoverPhase,
      graph: status.cutovers[1]!.phase as CutoverPhase,
    });
  };
  const both = async (phase: CutoverPhase, reason: string, force = false) => {
    for (const cutover of cutovers) await cutover.setPhase(phase, { reason, force });
    log(`phase -> ${phase} (${reason})`);
  };
  const verify = async (label: string, repair = false) => {
    const outcomes: CutoverVerifyResult[] = [
      await tasks.cutover.verify({ repair, recheckDelayMs: 300 }),
      await graph.cutover.verify({ repair, recheckDelayMs: 300 }),
    ];
    for (const v of outcomes) {
      log(
        `  verify ${v.cutover.padEnd(5)} ${label}: ${v.keysChecked} keys, ${v.mismatched} divergent (${(v.mismatchRate * 100).toFixed(2)} %: ${v.missingInNext} missing in next, ${v.missingInLegacy} missing in legacy)${repair ? `, ${v.repaired} repaired` : ""}${
          v.samples.length
            ? `; e.g. ${v.samples
                .slice(0, 3)
                .map((s) => `${s.key} ${s.kind}`)
                .join(", ")}`
            : ""
        }`,
      );
      result.verifications.push({
        store: v.cutover,
        phase: v.phase,
        keys: v.keysChecked,
        divergent: v.mismatched,
        repaired: v.repaired,
      });
    }
    return outcomes;
  };

  const traffic = startTraffic(tasks, graph, taskCount, projectCount);
  try {
    log("phase legacy-only: the application serves from memory");
    await sleep(150);
    await report();

    await both("dual-write", "start writing to PostgreSQL too");
    await sleep(150);
    await report();

    log("backfill: copying what was there before dual-write");
    const progress = (event: { task: string; done: number; total?: number; finished?: boolean }) => {
      if (event.finished) log(`  ${event.task}: ${event.done} records`);
    };
    const taskFill = await tasks.cutover.backfill({
      from: () => legacy.tasks.values(),
      keyOf: (task) => task.id,
      to: documentSink(pool, documents),
      batchSize: 500,
      total: legacy.tasks.size,
      onProgress: progress,
    });
    const graphFill = await graph.cutover.backfill({
      from: () => memoryNodes(legacy.graph),
      keyOf: (node) => node.project.id,
      to: graphSink(pool),
      batchSize: 50,
      rateLimit: 5_000,
      onProgress: progress,
    });
    log(
      `  backfill done: ${taskFill.written} tasks in ${taskFill.batches} batches, ${graphFill.written} projects in ${graphFill.batches} batches`,
    );
    // A backfill races the live writes it overlaps with (it may copy a value older than one that was
    // just dual-written); verifying with repair closes exactly those keys from the authoritative side.
    await verify("after backfill", true);
    await verify("again");

    log("outage drill: the graph database fails for a moment during dual-write");
    pgGraph.failing = true;
    for (let i = 0; i < 3; i++)
      await graph.putProject({
        id: `p${String(i).padStart(3, "0")}`,
        name: `project ${i} (during outage)`,
        owner: "grace",
      });
    pgGraph.failing = false;
    const repaired = await graph.cutover.repair();
    result.repairsClosed += repaired.repaired;
    log(
      `  the 3 writes still succeeded (legacy is authoritative); the ledger recorded them for next; repair(): ${repaired.repaired} closed, ${repaired.pending} pending`,
    );

    await both("shadow", "compare reads in the background");
    await sleep(400);
    await report();

    for (const percent of [10, 50]) {
      await both(`ramp:${percent}`, `serve ${percent} % of reads from PostgreSQL`);
      await sleep(250);
      await report();
    }
    log("rollback drill: one phase back, then forward again");
    for (const cutover of cutovers) await cutover.rollback({ reason: "rollback drill" });
    await report();
    await both("ramp:10", "resume the ramp");
    await both("ramp:50", "resume the ramp");
    await both("ramp:100", "all reads from PostgreSQL");
    await sleep(250);
    await report();

    await both("next-primary", "PostgreSQL is authoritative; memory still written for rollback");
    await sleep(250);
    await report();
    await verify("in next-primary");

    // Traffic keeps writing legacy until next-only, so no snapshot can be newer than its last write;
    // the example retires memory without one (forced, with the reason on record).
    await both("next-only", "memory retired (example: no final snapshot kept)", true);
    await sleep(150);
    await report();
  } finally {
    await traffic.stop();
    result.writes = traffic.counters.writes;
    result.reads = traffic.counters.reads;
    result.trafficErrors = traffic.counters.errors;
    const counts = await pool.query(
      "select (select count(*)::int from tasks) as tasks, (select count(*)::int from projects) as projects, (select count(*)::int from project_dependencies) as edges",
    );
    result.rows = counts.rows[0];
    await server.close();
    await tasks.cutover.close();
    await graph.cutover.close();
    await pool.end();
  }
  log(
    `done: ${result.writes} writes and ${result.reads} reads served during the migration, ${result.trafficErrors} errors; PostgreSQL holds ${result.rows.tasks} tasks, ${result.rows.projects} projects, ${result.rows.edges} edges`,
  );
  return result;
}
