import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  type AsyncMapLike,
  type CutoverStore,
  createMapCutover,
  documentSink,
  upsertSink,
} from "../../../src/cutover/index.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import type { ProgressEvent } from "../../../src/progress.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("cutover_backfill");

interface Task extends Record<string, unknown> {
  id: string;
  title: string;
  status: "open" | "running" | "done";
  progress: number;
}

function task(i: number): Task {
  return {
    id: `t${String(i).padStart(5, "0")}`,
    title: `task ${i}`,
    status: (["open", "running", "done"] as const)[i % 3]!,
    progress: (i * 7) % 101,
  };
}

describe("backfill and verifier", () => {
  const legacy = new Map<string, Task>();
  let documents: DocumentStore<Task>;
  let store: CutoverStore<AsyncMapLike<Task>>;

  before(async () => {
    for (let i = 0; i < 1000; i++) legacy.set(task(i).id, task(i));
    documents = new DocumentStore<Task>(db().pool, { table: "tasks" });
    await documents.ensureTable();
    store = await createMapCutover<Task>({
      name: "tasks",
      pool: db().pool,
      legacy,
      next: documents,
      reportIntervalMs: 0,
      initialPhase: "dual-write",
    });
  });
  after(async () => {
    await store.cutover.close();
  });

  test("an interrupted backfill resumes after its checkpoint and ends with every record", async () => {
    let batches = 0;
    const sink = documentSink(db().pool, documents);
    await assert.rejects(
      store.cutover.backfill({
        from: () => legacy.entries(),
        to: async (batch) => {
          if (++batches === 3) throw new Error("connection lost (injected)");
          return sink(batch);
        },
        batchSize: 100,
      }),
      /connection lost/,
    );
    assert.equal(await documents.count(), 200);
    const { rows } = await db().pool.query(
      "select last_key, rows_done::int, status from pgshift.cutover_backfills where cutover = 'tasks'",
    );
    assert.deepEqual(rows[0], { last_key: "t00199", rows_done: 200, status: "running" });

    const events: ProgressEvent[] = [];
    const resumed = await store.cutover.backfill({
      from: () => legacy.entries(),
      to: sink,
      batchSize: 100,
      total: legacy.size,
      onProgress: (event) => events.push(event),
    });
    assert.equal(resumed.resumedAfter, "t00199");
    assert.deepEqual([resumed.skipped, resumed.written, resumed.totalWritten], [200, 800, 1000]);
    assert.equal(await documents.count(), 1000);
    assert.deepEqual(await documents.get("t00500"), task(500));
    assert.deepEqual(events.at(-1), {
      task: "backfill tasks",
      done: 1000,
      total: 1000,
      unit: "records",
      finished: true,
    });
  });

  test("a finished backfill runs again idempotently; documents with their key go through importDocuments", async () => {
    const again = await store.cutover.backfill({
      from: () => legacy.values(),
      keyOf: (doc) => doc.id,
      to: documentSink(db().pool, documents),
      batchSize: 250,
      rateLimit: 100_000,
    });
    assert.deepEqual([again.resumedAfter, again.skipped, again.written, again.batches], [null, 0, 1000, 4]);
    assert.equal(await documents.count(), 1000);
  });

  test("resuming when the checkpoint key was deleted meanwhile starts a second full pass", async () => {
    const sink = documentSink(db().pool, documents);
    let batches = 0;
    await assert.rejects(
      store.cutover.backfill({
        from: () => legacy.entries(),
        resumeKey: "vanishing",
        to: async (batch) => {
          if (++batches === 2) throw new Error("interrupted (injected)");
          return sink(batch);
        },
        batchSize: 300,
      }),
      /interrupted/,
    );
    await store.delete("t00299");
    const resumed = await store.cutover.backfill({
      from: () => legacy.entries(),
      resumeKey: "vanishing",
      to: sink,
      batchSize: 300,
    });
    assert.equal(resumed.resumedAfter, "t00299");
    assert.equal(resumed.written, 999);
    await store.set("t00299", task(299));
  });

  test("an ordered source resumes by key comparison; upsertSink keeps next's newer rows with onConflict keep", async () => {
    await db().pool.query("create table scores (id integer primary key, score integer not null)");
    await db().pool.query("insert into scores values (5, 999)");
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, score: i + 1 }));
    const keep = upsertSink<{ id: number; score: number }>(db().pool, {
      table: "scores",
      keyColumns: ["id"],
      columns: ["id", "score"],
      toRow: (r) => [r.id, r.score],
      onConflict: "keep",
    });
    let calls = 0;
    await assert.rejects(
      store.cutover.backfill({
        from: rows,
        resumeKey: "scores",
        ordered: true,
        to: async (batch) => {
          if (++calls === 2) throw new Error("stopped (injected)");
          return keep(batch);
        },
        batchSize: 10,
      }),
      /stopped/,
    );
    // Keys compare as numbers, so "9" is not taken for coming after the checkpoint "10".
    const resumed = await store.cutover.backfill({
      from: rows,
      resumeKey: "scores",
      ordered: true,
      to: keep,
      batchSize: 10,
    });
    assert.deepEqual([resumed.resumedAfter, resumed.skipped, resumed.written], ["10", 10, 20]);
    const { rows: stored } = await db().pool.query("select id, score from scores order by id");
    assert.equal(stored.length, 30);
    assert.deepEqual(stored[4], { id: 5, score: 999 }, "a row next already had is kept");
    // The same key twice in one batch: the last one wins, no "affect row a second time" error.
    const update = upsertSink<{ id: number; score: number }>(db().pool, {
      table: "scores",
      keyColumns: ["id"],
      columns: ["id", "score"],
      toRow: (r) => [r.id, r.score],
    });
    await update([
      { id: 7, score: 70 },
      { id: 7, score: 71 },
    ]);
    assert.equal((await db().pool.query("select score from scores where id = 7")).rows[0].score, 71);
  });

  test("the verifier finds injected divergences, with counts, rate and sample keys", async () => {
    const clean = await store.cutover.verify();
    assert.deepEqual(
      [clean.mode, clean.keysChecked, clean.mismatched],
      ["full", 1000, 0],
      JSON.stringify(clean.samples),
    );

    await db().pool.query(`update tasks set doc = jsonb_set(doc, '{progress}', '100') where id = 't00010'`);
    await db().pool.query("delete from tasks where id = 't00020'");
    await db().pool.query(
      `insert into tasks (id, doc, source_file, content_hash) values ('ghost', '{"id":"ghost"}', 'test', 'x')`,
    );
    legacy.delete("t00030");

    const found = await store.cutover.verify();
    assert.equal(found.keysChecked, 1001);
    assert.deepEqual(
      [found.mismatched, found.missingInNext, found.missingInLegacy, found.matched],
      [4, 1, 2, 997],
    );
    assert.equal(found.mismatchRate, 4 / 1001);
    assert.deepEqual(found.samples.map((s) => [s.key, s.kind]).sort(), [
      ["ghost", "missing-in-legacy"],
      ["t00010", "mismatch"],
      ["t00020", "missing-in-next"],
      ["t00030", "missing-in-legacy"],
    ]);
    const changed = found.samples.find((s) => s.key === "t00010")!;
    assert.deepEqual(changed.diff, [{ path: "/progress", legacy: task(10).progress, next: 100 }]);

    const sampled = await store.cutover.verify({ sample: 50 });
    assert.deepEqual([sampled.mode, sampled.keysChecked], ["sample", 50]);

    // The CLI reports what the application recorded: the latest verification (the sample) may miss
    // divergences, so the full result is re-recorded last.
    await store.cutover.verify();
    const cli = await runCli(["cutover", "verify", "tasks", "--json", "--to", db().url]);
    assert.equal(cli.code, 3, cli.stderr);
    const report = JSON.parse(cli.stdout);
    assert.equal(report.verdict, "divergent");
    assert.equal(report.verification.mismatched, 4);
    const human = await runCli(["cutover", "verify", "tasks", "--to", db().url]);
    assert.equal(human.code, 3);
    assert.match(human.stdout, /t00010: mismatch at \/progress/);

    const repaired = await store.cutover.verify({ repair: true });
    assert.equal(repaired.repaired, 4);
    assert.equal(await documents.get("ghost"), undefined);
    assert.equal(await documents.get("t00030"), undefined);
    assert.deepEqual(await documents.get("t00010"), task(10));
    const after = await store.cutover.verify();
    assert.equal(after.mismatched, 0);
    const ok = await runCli(["cutover", "verify", "tasks", "--to", db().url]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /tasks \(dual-write\): consistent/);
  });
});
