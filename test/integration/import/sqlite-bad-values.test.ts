import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("sqlbad");
let path: string;

before(() => {
  path = makeSqlite(
    join(fixtureDir(), "bad.db"),
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, due DATE, data BLOB)",
    (d) => {
      const insert = d.prepare("insert into notes values (?, ?, ?, ?)");
      for (let i = 1; i <= 20; i++) insert.run(i, `note ${i}`, "2024-01-01", null);
      d.prepare("update notes set body = 'nul' || char(0) || 'inside', data = x'00ff' where id = 5").run();
      d.prepare("update notes set body = cast(x'6869ff' as text) where id = 9").run();
      d.prepare("update notes set due = '2024-02-30' where id = 13").run();
      d.prepare("update notes set body = 'genuine \uFFFD replacement' where id = 14").run();
      d.exec("CREATE TABLE tags (name TEXT, lang TEXT, label TEXT, PRIMARY KEY (name, lang)) WITHOUT ROWID");
      d.prepare("insert into tags values ('a', 'en', cast(x'6869ff' as text))").run();
      d.prepare("insert into tags values ('b', 'en', 'fine \uFFFD')").run();
    },
  );
});

describe("unrepresentable values", () => {
  it("fail by default, naming table, rowid, column and value, and say how to go on", async () => {
    const result = await importSqlite({
      path,
      pool: db().pool,
      schema: "strict",
      verify: false,
      jobs: 1,
    });
    assert.equal(result.ok, false);
    assert.equal(result.error?.code, "bad_value");
    assert.match(result.error!.message, /table notes, rowid 5, column body: NUL character in text/);
    assert.match(result.error!.message, /--on-bad-value quarantine/);
    assert.deepEqual(
      result.tables.map((t) => [t.source, t.status, t.rowsLoaded]),
      [
        ["notes", "incomplete", 0],
        ["tags", "incomplete", 0],
      ],
    );
    assert.ok(result.nextSteps.some((s) => s.includes("--resume")));
    assert.ok(result.nextSteps.some((s) => s.includes("--if-exists replace")));
    const { rows } = await db().pool.query("select count(*)::int as n from strict.notes");
    assert.equal(rows[0].n, 0, "the failed chunk left nothing behind");
    const { rows: run } = await db().pool.query("select status from pgshift.import_runs where run_id = $1", [
      result.runId,
    ]);
    assert.equal(run[0].status, "failed");
  });

  it("quarantine keeps the whole row byte-exact and loads the rest: read = loaded + quarantined", async () => {
    const result = await importSqlite({
      path,
      pool: db().pool,
      schema: "lenient",
      verify: false,
      onBadValue: "quarantine",
      threads: true,
    });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    const tags = result.tables.find((t) => t.source === "tags")!;
    assert.deepEqual([tags.rowsRead, tags.rowsLoaded, tags.rowsQuarantined], [2, 1, 1]);
    const { rows: tagRows } = await db().pool.query(
      "select location, reason, convert_from(raw, 'UTF8') as raw from pgshift.quarantine where run_id = $1 and target_table = 'tags'",
      [result.runId],
    );
    assert.deepEqual(
      tagRows.map((r) => [r.location, r.reason, JSON.parse(r.raw).label]),
      [['key ("a", "en")', "invalid UTF-8 in text", { $bytes: "6869ff" }]],
    );
    const { rows: fine } = await db().pool.query("select label from lenient.tags where name = 'b'");
    assert.equal(fine[0].label, "fine \uFFFD", "WITHOUT ROWID rows are re-read by key to check UTF-8");
    const table = result.tables.find((t) => t.source === "notes")!;
    assert.deepEqual([table.rowsRead, table.rowsLoaded, table.rowsQuarantined], [20, 17, 3]);
    const { rows } = await db().pool.query(
      "select location, column_name, reason, convert_from(raw, 'UTF8') as raw, raw_format from pgshift.quarantine where run_id = $1 and target_table = 'notes' order by id",
      [result.runId],
    );
    assert.deepEqual(
      rows.map((r) => [r.location, r.column_name, r.reason, r.raw_format]),
      [
        ["rowid 5", "body", "NUL character in text (PostgreSQL text cannot store it)", "sqlite-row-json"],
        ["rowid 9", "body", "invalid UTF-8 in text", "sqlite-row-json"],
        ["rowid 13", "due", "unparsable date: day out of range", "sqlite-row-json"],
      ],
    );
    assert.deepEqual(JSON.parse(rows[0].raw), {
      $rowid: 5,
      id: 5,
      body: "nul\u0000inside",
      due: "2024-01-01",
      data: { $blob: "00ff" },
    });
    assert.deepEqual(JSON.parse(rows[1].raw).body, { $bytes: "6869ff" });
    assert.equal(JSON.parse(rows[2].raw).due, "2024-02-30");
    const { rows: kept } = await db().pool.query("select body from lenient.notes where id = 14");
    assert.equal(
      kept[0].body,
      "genuine \uFFFD replacement",
      "a real U+FFFD is not mistaken for invalid UTF-8",
    );
  });
});
