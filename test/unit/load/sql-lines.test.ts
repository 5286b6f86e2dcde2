import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { type ChunkOutput, encodeChunk } from "../../../src/load/chunk-encoder.ts";
import { formatEpochMs } from "../../../src/load/row-encoder.ts";
import { concatenated, planSqlLines, planWholeRows } from "../../../src/load/sql-lines.ts";
import type { ChunkPlan, ColumnPlan, TablePlan } from "../../../src/schema/plan.ts";
import type { Conversion } from "../../../src/schema/type-mapping.ts";
import { openSqlite } from "../../../src/sources/sqlite/sqlite-rows.ts";

const dir = mkdtempSync(join(tmpdir(), "pgshift-sql-lines-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function col(name: string, conversion: Conversion, pgType: string): ColumnPlan {
  return {
    sourceName: name,
    targetName: name,
    declaredType: "",
    pgType,
    conversion,
    nullable: true,
    identity: false,
    nocase: false,
  };
}

function table(name: string, columns: ColumnPlan[], chunks: ChunkPlan[], bigIntegers = false): TablePlan {
  return {
    sourceName: name,
    targetSchema: "public",
    targetName: name,
    columns,
    primaryKey: [],
    withoutRowid: false,
    rows: 0,
    bigIntegers,
    chunks,
    createSql: "",
    keys: [],
    indexes: [],
    checks: [],
    foreignKeys: [],
  };
}

const COLUMNS = [
  col("i", "integer", "bigint"),
  col("t", "text", "text"),
  col("b", "boolean", "boolean"),
  col("ms", "epoch-ms", "timestamptz"),
  col("s", "epoch-s", "timestamptz"),
  col("r", "real", "double precision"),
  col("j", "jsonb", "jsonb"),
  col("x", "bytea", "bytea"),
  col("n", "integer", "integer"),
];

/** Values, one row each; every SQL-encoded kind sees good values and values it must hand back. */
const ROWS: unknown[][] = [
  [1, "plain", 0, 0, 0, 0.1, '{"a":1}', Buffer.from([0, 1, 255]), 7],
  [-9007199254740991, "tab\there\nnew\\back\rcr", 1, 1, 1, -0, "[]", "text in blob", null],
  [null, null, null, null, null, null, null, null, null],
  [42, "ok", 2, 999, 253402300799, 1e300, "1", null, 3], // boolean 2: bad value
  [43, "ok", 1, -1, -1, 5e-324, "2", null, 4], // negative epochs: JavaScript path
  [44, "ok", 0, 253402300799999, 253402300800, 1.5, "3", null, 5], // epoch-s out of range: bad
  [45, "ok", 1, 253402300800000, 0, 2.5, "4", null, 6], // epoch-ms out of range: bad
  [46, "ok", "yes", 1000, 10, 0, "5", null, 7], // text in a boolean column: bad
  [47, "ok", 1.0, 1.5, 10, 0, "6", null, 1.5], // real in epoch and integer columns
  [48, "nul\u0000inside", 1, 1001, 10, 0, "7", null, 8], // NUL in text: bad
  [49, "ok", 0, "2020-01-01", 10, 0, "8", null, 9], // text in epoch column: bad
  [50, "ok", 0, 1_700_000_000_123, 1_700_000_000, 0, '"\\u0000"', null, 10], // JSON \u0000: bad
  [51, "ok", 1, 1_700_000_000_010, 1_700_000_000, 0, "9", null, 11],
  [52, "ok", 1, 1_700_000_000_100, 1_700_000_000, 0, "10", new Uint8Array(0), 12],
];

/** ROWS in three chunks: rowids 1-3, 4-9 and the rest. */
const ROW_CHUNKS = [
  { chunk: 1, throughRowid: "3" },
  { chunk: 2, afterRowid: "3", throughRowid: "9" },
  { chunk: 3, afterRowid: "9" },
] as ChunkPlan[];

function build(name: string): string {
  const path = join(dir, `${name}.db`);
  const db = new Database(path);
  db.exec(`create table t (i, t, b, ms, s, r, j, x, n)`);
  const insert = db.prepare(`insert into t values (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  for (const row of ROWS) insert.run(...row.map((v) => (typeof v === "boolean" ? Number(v) : v)));
  // Invalid UTF-8 in a text column, and a genuine U+FFFD: both go through the JavaScript checks.
  db.prepare(`insert into t (i, t, b, ms, n) values (60, cast(x'61ff62' as text), 1, 5, 1)`).run();
  db.prepare(`insert into t (i, t, b, ms, n) values (61, 'ok\uFFFD', 1, 5, 1)`).run();
  db.prepare(`insert into t (i, t, b, ms, n) values (62, 'ok', 1, 5, 1)`).run();
  db.close();
  return path;
}

interface Captured {
  text: string;
  output?: ChunkOutput;
  error?: string;
}

/** js: every value in JavaScript; mixed: SQL cells beside JavaScript ones; whole: whole batches from SQL where possible. */
type Mode = "js" | "mixed" | "whole";

async function run(
  path: string,
  plan: TablePlan,
  policy: "fail" | "quarantine",
  mode: Mode | boolean,
): Promise<Captured[]> {
  const resolved: Mode = mode === true ? "mixed" : mode === false ? "js" : mode;
  const sqlLines = resolved !== "js";
  const wholeRows = resolved === "whole";
  const db = openSqlite(path);
  try {
    const results: Captured[] = [];
    for (const chunk of plan.chunks) {
      let text = "";
      try {
        const output = await encodeChunk(
          db,
          { table: plan, chunk, policy, sqlLines, wholeRows },
          (data, rows) => {
            text += `${data}|${rows}|`;
          },
        );
        results.push({ text, output });
      } catch (error) {
        results.push({ text, error: (error as Error).message });
      }
    }
    return results;
  } finally {
    db.close();
  }
}

describe("SQL fast path of chunk encoding", () => {
  it("plans SQL cells for integers, booleans and epochs only, and none for WITHOUT ROWID tables", () => {
    const plan = planSqlLines(table("t", COLUMNS, []))!;
    assert.deepEqual(plan.parts, [-1, 1, -1, 5, 6, 7, -1]);
    assert.deepEqual(plan.counted, [2, 3, 4]);
    assert.equal(planSqlLines({ ...table("t", COLUMNS, []), withoutRowid: true }), undefined);
    assert.equal(planSqlLines(table("t", [col("t", "text", "text")], [])), undefined);
  });

  for (const policy of ["quarantine", "fail"] as const) {
    for (const bigIntegers of [false, true]) {
      it(`gives byte-identical COPY text, counts and bad-value handling (${policy}, bigIntegers ${bigIntegers})`, async () => {
        const path = build(`t-${policy}-${bigIntegers}`);
        const plan = table("t", COLUMNS, ROW_CHUNKS, bigIntegers);
        const slow = await run(path, plan, policy, false);
        const fast = await run(path, plan, policy, true);
        assert.deepEqual(fast, slow);
        if (policy === "quarantine") {
          const all = slow.flatMap((r) => r.output!.quarantined.map((q) => q.location));
          assert.deepEqual(all, [
            "rowid 4",
            "rowid 6",
            "rowid 7",
            "rowid 8",
            "rowid 9",
            "rowid 10",
            "rowid 11",
            "rowid 12",
            "rowid 15",
          ]);
          assert.equal(
            slow.reduce((n, r) => n + r.output!.rowsRead, 0),
            ROWS.length + 3,
          );
        } else {
          assert.match(slow[1]!.error!, /rowid 4, column b: not 0 or 1/);
        }
      });
    }
  }

  /** The COPY lines of a run, sorted, with the real column (index 5) compared as numbers. */
  const lines = (captured: Captured[]) =>
    captured
      .flatMap((r) =>
        r.text
          .split(/\|\d+\|/)
          .join("")
          .split("\n"),
      )
      .filter((line) => line !== "")
      .map((line) =>
        line
          .split("\t")
          .map((cell, i) => (i === 5 && cell !== "\\N" ? String(Number(cell)) : cell))
          .join("\t"),
      )
      .sort();

  it("plans the whole-row path only when SQLite can encode every column", () => {
    assert.ok(planWholeRows(table("t", COLUMNS, [])));
    assert.equal(planWholeRows({ ...table("t", COLUMNS, []), withoutRowid: true }), undefined);
    assert.equal(planWholeRows(table("t", [...COLUMNS, col("d", "numeric", "numeric")], [])), undefined);
  });

  for (const policy of ["quarantine", "fail"] as const) {
    for (const bigIntegers of [false, true]) {
      it(`whole-row path: same rows, counts and bad-value handling as JavaScript (${policy}, bigIntegers ${bigIntegers})`, async () => {
        const path = build(`w-${policy}-${bigIntegers}`);
        const plan = table("t", COLUMNS, ROW_CHUNKS, bigIntegers);
        const slow = await run(path, plan, policy, "js");
        const whole = await run(path, plan, policy, "whole");
        assert.deepEqual(
          whole.map((r) => r.error),
          slow.map((r) => r.error),
        );
        // Invalid UTF-8 (rowid 15) is not looked for in SQL: its stored bytes go out as they are, for
        // PostgreSQL to refuse (the chunk is then encoded in JavaScript; see the import tests).
        const invalid = lines(whole).filter((line) => line.startsWith("60\t"));
        const rest = lines(whole).filter((line) => !line.startsWith("60\t"));
        if (policy === "quarantine") {
          assert.equal(invalid.length, 1);
          assert.deepEqual(rest, lines(slow));
          assert.deepEqual(
            whole.map((r) => r.output!.rowsRead),
            slow.map((r) => r.output!.rowsRead),
          );
          // Rowid 15 is loaded here, so its boolean (b) and epoch (ms) count as conversions in chunk 3.
          const expected = slow.map((r) => r.output!.conversions.slice());
          expected[2]![2]!++;
          expected[2]![3]!++;
          assert.deepEqual(
            whole.map((r) => r.output!.conversions),
            expected,
          );
          const quarantined = (runs: Captured[]) =>
            runs.flatMap((r) =>
              r.output!.quarantined.map((q) => [
                q.location,
                q.column,
                q.reason,
                Buffer.from(q.raw).toString("hex"),
              ]),
            );
          assert.deepEqual(
            quarantined(whole),
            quarantined(slow).filter(([location]) => location !== "rowid 15"),
          );
        } else {
          assert.match(whole[1]!.error!, /rowid 4, column b: not 0 or 1/);
        }
      });
    }
  }

  it("whole-row path reads every row once across adaptive batches and formats dates as JavaScript does", async () => {
    const path = join(dir, "whole-batches.db");
    const db = new Database(path);
    db.exec("create table w (i, t, d, ts, tz, r)");
    const insert = db.prepare("insert into w (rowid, i, t, d, ts, tz, r) values (?, ?, ?, ?, ?, ?, ?)");
    const dates = ["2024-02-29", "2023-02-29", "0000-01-01", "2023-1-01", "2023-12-31", "9999-12-31"];
    const times = [
      "2024-02-29 23:59:59",
      "2024-02-29T00:00:00.123456",
      "2024-02-29 24:00:00",
      "2024-02-29 10:60:00",
      "2024-02-29 10:00",
      "2024-02-29 10:00:00.1234567",
      "2023-02-30 10:00:00",
    ];
    const zoned = [
      ...times,
      "2024-02-29 10:00:00Z",
      "2024-02-29 10:00:00+05:30",
      "2024-02-29T10:00:00.5-08:00",
    ];
    for (let i = 1; i <= 9000; i++)
      insert.run(
        i * 2 - 5000,
        i,
        i % 11 === 0 ? `x\ty\\z\n${i}` : `row ${i}`,
        dates[i % dates.length],
        times[i % times.length],
        i % 13 === 0 ? null : zoned[i % zoned.length],
        i / 7,
      );
    db.close();
    const columns = [
      col("i", "integer", "bigint"),
      col("t", "text", "text"),
      col("d", "date", "date"),
      col("ts", "timestamp", "timestamp"),
      col("tz", "timestamptz", "timestamptz"),
      col("r", "real", "double precision"),
    ];
    const chunks = [
      { chunk: 1, throughRowid: "0" },
      { chunk: 2, afterRowid: "0", throughRowid: "9000" },
      { chunk: 3, afterRowid: "9000" },
    ] as ChunkPlan[];
    const plan = table("w", columns, chunks, false);
    const slow = await run(path, plan, "quarantine", "js");
    const whole = await run(path, plan, "quarantine", "whole");
    const normalized = (runs: Captured[]) =>
      lines(runs).map((line) => {
        const cells = line.split("\t");
        cells[5] = cells[5] === "\\N" ? cells[5] : String(Number(cells[5]));
        return cells.join("\t");
      });
    assert.deepEqual(normalized(whole), normalized(slow));
    assert.deepEqual(
      whole.map((r) => r.output!.rowsRead),
      slow.map((r) => r.output!.rowsRead),
    );
    assert.deepEqual(
      whole.map((r) => r.output!.conversions),
      slow.map((r) => r.output!.conversions),
    );
    assert.deepEqual(
      whole.map((r) => r.output!.quarantined.map((q) => q.location).sort()),
      slow.map((r) => r.output!.quarantined.map((q) => q.location).sort()),
    );
    assert.ok(slow.some((r) => r.output!.quarantined.length > 0));
  });

  it("reads every row exactly once across batches, with negative and extreme rowids", async () => {
    const path = join(dir, "batches.db");
    const db = new Database(path);
    db.defaultSafeIntegers(true);
    db.exec("create table w (i, b)");
    const insert = db.prepare("insert into w (rowid, i, b) values (?, ?, ?)");
    const rowids: bigint[] = [-(2n ** 63n), -5n, -1n, 0n];
    for (let i = 1n; i <= 4500n; i++) rowids.push(i * 3n);
    rowids.push(2n ** 53n + 1n, 2n ** 63n - 2n, 2n ** 63n - 1n);
    for (const rowid of rowids) insert.run(rowid, rowid % 1000n, rowid % 7n === 0n ? 2n : 1n);
    db.close();
    const columns = [col("i", "integer", "bigint"), col("b", "boolean", "boolean")];
    const chunks = [
      { chunk: 1, throughRowid: "0" },
      { chunk: 2, afterRowid: "0", throughRowid: "6000" },
      { chunk: 3, afterRowid: "6000" },
    ] as ChunkPlan[];
    const plan = table("w", columns, chunks, true);
    const slow = await run(path, plan, "quarantine", false);
    const fast = await run(path, plan, "quarantine", true);
    assert.deepEqual(fast, slow);
    assert.deepEqual(
      fast.map((r) => r.output!.rowsRead),
      [4, 2000, rowids.length - 2004],
    );
    const whole = await run(path, table("w", columns, [{ chunk: 1 } as ChunkPlan], true), "quarantine", true);
    assert.equal(whole[0]!.output!.rowsRead, rowids.length);
    assert.equal(whole[0]!.output!.quarantined.length, rowids.filter((r) => r % 7n === 0n).length);
  });

  it("formats epochs exactly as formatEpochMs", async () => {
    const path = join(dir, "epochs.db");
    const db = new Database(path);
    db.exec("create table e (ms, s)");
    const values = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 951_782_400_000, 253402300799999, 86_399_999];
    for (let i = 0; i < 500; i++) values.push(Math.floor((i * 2654435761) % 253402300799999));
    const insert = db.prepare("insert into e values (?, ?)");
    for (const v of values) insert.run(v, Math.floor(v / 1000));
    db.close();
    const plan = table(
      "e",
      [col("ms", "epoch-ms", "timestamptz"), col("s", "epoch-s", "timestamptz")],
      [{ chunk: 1 } as ChunkPlan],
    );
    const [fast] = await run(path, plan, "fail", true);
    const expected = values.map(
      (v) => `${formatEpochMs(v)}\t${formatEpochMs(Math.floor(v / 1000) * 1000)}\n`,
    );
    assert.equal(fast!.text, `${expected.join("")}|${values.length}|`);
    assert.deepEqual(fast!.output!.conversions, [values.length, values.length]);
  });
});

describe("concatenated", () => {
  it("keeps a short list one chain and splits a long one within SQLite's expression depth", () => {
    assert.equal(concatenated(["a", "char(9)", "b"]), "a || char(9) || b");
    const parts = Array.from({ length: 3201 }, (_, i) => (i % 2 ? "char(9)" : `'${i}'`));
    const sql = concatenated(parts);
    assert.match(sql, /^\(\(\(\(\(/);
    const db = new Database(":memory:");
    try {
      const got = db.prepare(`select ${sql} as line`).pluck().get() as string;
      assert.equal(got, parts.map((p) => (p === "char(9)" ? "\t" : p.slice(1, -1))).join(""));
      // The left-deep chain of the same parts is what failed before.
      assert.throws(() => db.prepare(`select ${parts.join(" || ")}`), /Expression tree is too large/);
    } finally {
      db.close();
    }
  });
});
