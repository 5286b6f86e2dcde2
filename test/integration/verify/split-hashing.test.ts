import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { useTestDatabase } from "../../helpers/database.ts";

/**
 * One table's server-side hashing split among several connections in one snapshot: ordered key-range
 * chunks by key ranges on chunk boundaries, sampled (summed) chunks by page ranges. Whatever part a
 * difference falls in (below the lowest key, in the first or last share, beyond the highest key), it is
 * found, and the figures equal those of one connection.
 */
const db = useTestDatabase("vsplit");
const ROWS = 20_000;
let dir: string;
let path: string;

describe("verification split among connections", () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pgshift-vsplit-"));
    path = join(dir, "big.db");
    const sqlite = new Database(path);
    sqlite.exec("create table big (id integer primary key, label text not null, amount numeric, seen date)");
    const insert = sqlite.prepare("insert into big values (?, ?, ?, ?)");
    sqlite.transaction(() => {
      for (let i = 1; i <= ROWS; i++)
        insert.run(
          i * 3,
          `row "${i}", with, commas`,
          i % 7 === 0 ? null : i / 8,
          `2024-01-${String(1 + (i % 28)).padStart(2, "0")}`,
        );
    })();
    sqlite.close();
    const imported = await importSqlite({ path, pool: db().pool, verify: false, jobs: 2 });
    assert.equal(imported.ok, true, JSON.stringify(imported.error));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const verify = (targetConnections: number, sample?: number) =>
    verifySqlite({
      sourcePath: path,
      pool: db().pool,
      targetConnections,
      ...(sample !== undefined ? { sample } : {}),
    });

  it("finds the same identical figures with one connection and with three", async () => {
    const one = await verify(1);
    const three = await verify(3);
    assert.equal(one.identical, true);
    assert.equal(three.identical, true);
    const [a] = one.tables;
    const [b] = three.tables;
    assert.equal(a!.chunking.targetConnections, undefined);
    assert.equal(b!.chunking.targetConnections, 3);
    assert.equal(b!.targetRows, ROWS);
    assert.deepEqual(b!.checksums, a!.checksums);
    assert.equal(b!.checksums.source, b!.checksums.target);
    const sampled = await verify(3, 1);
    assert.equal(sampled.identical, true);
    assert.equal(sampled.tables[0]!.chunking.targetConnections, 3);
    assert.equal(sampled.tables[0]!.sample?.targetRows, ROWS);
  });

  it("finds differences in every share, below the lowest key and beyond the highest", async () => {
    const pool = db().pool;
    await pool.query("update big set amount = amount + 1 where id in (3, 59994)");
    await pool.query("delete from big where id = 30000");
    await pool.query(
      "insert into big (id, label, amount, seen) values (-5, 'below', 1, '2024-01-01'), (90000, 'beyond', 2, '2024-01-02')",
    );
    try {
      for (const sample of [undefined, 1]) {
        const result = await verify(3, sample);
        assert.equal(result.identical, false);
        const [t] = result.tables;
        assert.equal(t!.chunking.targetConnections, 3);
        assert.deepEqual(t!.changed.map((c) => c.key.id).sort(), ["3", "59994"], `sample ${sample}`);
        assert.deepEqual(
          t!.missing.map((k) => k.id),
          ["30000"],
        );
        assert.deepEqual(t!.extra.map((k) => k.id).sort(), ["-5", "90000"]);
      }
    } finally {
      await pool.query("delete from big where id in (-5, 90000)");
      await pool.query("update big set amount = amount - 1 where id in (3, 59994)");
    }
  });
});
