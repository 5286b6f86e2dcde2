import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { generateSqlite } from "../../../bench/generate-sqlite.ts";
import { runMeasured } from "../../../bench/lib/measure.ts";
import { createRawTables, describeSqlite, runRawCopy } from "../../../bench/lib/raw-copy.ts";
import { countRows } from "../../../bench/lib/tools.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("bench");
const dir = mkdtempSync(join(os.tmpdir(), "pgshift-bench-raw-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("the raw sqlite3 | psql \\copy ceiling loads every row with the same values", async () => {
  const generated = generateSqlite({ path: join(dir, "raw.db"), rows: 2000 });
  const tables = describeSqlite(generated.path);
  assert.equal(tables.length, 11);
  await createRawTables(db().url, tables);
  const run = await runRawCopy({
    sqlitePath: generated.path,
    url: db().url,
    tables,
    jobs: 2,
    scratchDir: join(dir, "scratch"),
  });
  assert.equal(run.exitCode, 0, run.stderr);
  assert.deepEqual(
    await countRows(
      db().url,
      "public",
      tables.map((t) => t.name),
    ),
    generated.tables,
  );
  const source = new Database(generated.path, { readonly: true });
  try {
    const attachment = source.prepare("select id, content from attachments order by id limit 1").get() as {
      id: number;
      content: Buffer;
    };
    const task = source.prepare("select id, created_at, title from tasks order by id limit 1").get() as {
      id: number;
      created_at: number;
      title: string;
    };
    const stored = await db().pool.query<{ content: Buffer }>(
      "select content from attachments where id = $1",
      [attachment.id],
    );
    assert.deepEqual(stored.rows[0]!.content, attachment.content);
    const storedTask = await db().pool.query<{ created_at: Date; title: string }>(
      "select created_at, title from tasks where id = $1",
      [task.id],
    );
    assert.equal(storedTask.rows[0]!.created_at.getTime(), task.created_at);
    assert.equal(storedTask.rows[0]!.title, task.title);
  } finally {
    source.close();
  }
});

test("a failing pipeline is reported with its exit code", async () => {
  const run = await runRawCopy({
    sqlitePath: join(dir, "missing.db"),
    url: db().url,
    tables: [
      {
        name: "nowhere",
        rows: 1,
        columns: [{ name: "a", declared: "text", pgType: "text", select: '"a"', pk: 0 }],
      },
    ],
    jobs: 1,
    scratchDir: join(dir, "scratch-fail"),
  });
  assert.notEqual(run.exitCode, 0);
});

test("measured runs report exit code, output and the memory of the whole process tree", async () => {
  const run = await runMeasured("bash", [
    "-c",
    "node -e 'const b = Buffer.alloc(64 * 1024 * 1024, 1); setTimeout(() => console.log(b.length), 400)' & wait; exit 3",
  ]);
  assert.equal(run.exitCode, 3);
  assert.equal(run.stdout.trim(), String(64 * 1024 * 1024));
  assert.ok(run.peakTreeRssMb >= 64, `peak ${run.peakTreeRssMb} MB includes the child's 64 MB buffer`);
  assert.ok(run.peakProcessRssMb >= 64);
});
