import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import type { ImportPlan } from "../../../src/schema/plan.ts";
import { type EarlySourceSums, startEarlySourceSums } from "../../../src/verify/early-source-sums.ts";
import { verifyImport } from "../../../src/verify/verify-import.ts";
import type { VerifyResult } from "../../../src/verify/verify-result.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "./fixture.ts";

/**
 * Verification's source side computed while the import loads (early sums): the same verdicts as
 * computed afterwards. A row changed, deleted or added in PostgreSQL after the load is still found,
 * since the server side is computed from what PostgreSQL stores; early sums are left aside where they
 * do not fit (quarantined rows, another chunking).
 */
const db = useTestDatabase("vearly");
let fixture: Fixture;
/** The plan of the import into schema "later" (describe "after a load"). */
let laterPlan: ImportPlan;

/** Early sums that count the tables they served. */
function counted(early: EarlySourceSums): { early: EarlySourceSums; served: string[] } {
  const served: string[] = [];
  return {
    served,
    early: {
      take(sourceTable, strategy) {
        const sums = early.take(sourceTable, strategy);
        if (sums) served.push(sourceTable);
        return sums;
      },
      settled: () => early.settled(),
      close: () => early.close(),
    },
  };
}

function statuses(result: VerifyResult): Record<string, string> {
  return Object.fromEntries(result.tables.map((t) => [t.table, t.status]));
}

describe("early source sums", () => {
  before(() => {
    fixture = makeFixture({ items: 2500 });
  });
  after(() => fixture?.cleanup());

  it("an import that verifies while loading is identical, every table verified", async () => {
    const result = await importSqlite({
      path: fixture.path,
      pool: db().pool,
      schema: "loaded",
      jobs: 2,
      chunkRows: 700,
      verifyWhileLoading: true,
    });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    const verification = result.verification as unknown as VerifyResult;
    assert.equal(verification.identical, true);
    assert.deepEqual(statuses(verification), { items: "identical", pairs: "identical", loose: "identical" });
    const items = verification.tables.find((t) => t.table === "items")!;
    assert.equal(items.sourceRows, 2500);
    assert.equal(items.targetRows, 2500);
  });

  describe("after a load", () => {
    let plan: ImportPlan;
    before(async () => {
      const imported = await importSqlite({
        path: fixture.path,
        pool: db().pool,
        schema: "later",
        jobs: 2,
        verify: false,
      });
      assert.equal(imported.ok, true, JSON.stringify(imported.error));
      plan = imported.plan;
      laterPlan = plan;
    });

    const verify = async (chunkRows?: number) => {
      const started = startEarlySourceSums({
        plan,
        sourcePath: fixture.path,
        ...(chunkRows ? { chunkRows } : {}),
      });
      const spy = counted(started);
      // Computed before the verification asks: a table not reached yet would be given up.
      await started.settled();
      try {
        const result = await verifyImport({
          plan,
          sourcePath: fixture.path,
          pool: db().pool,
          early: spy.early,
        });
        return { result, served: spy.served };
      } finally {
        await started.close();
      }
    };

    it("serve every table and find a changed, a deleted and an added row in PostgreSQL", async () => {
      const clean = await verify();
      assert.equal(clean.result.identical, true, JSON.stringify(clean.result.tables));
      assert.deepEqual(clean.served.sort(), ["items", "loose", "pairs"]);
      await db().pool.query("create table later.items_backup as select * from later.items");
      try {
        await db().pool.query("update later.items set name = 'tampered' where id = 42");
        await db().pool.query("delete from later.items where id = 1500");
        await db().pool.query(
          "insert into later.items (id, name) overriding system value values (999999, 'intruder')",
        );
        const { result, served } = await verify();
        assert.ok(served.includes("items"), "the early sums were used");
        assert.equal(result.identical, false);
        const items = result.tables.find((t) => t.table === "items")!;
        assert.equal(items.status, "mismatch");
        assert.deepEqual(items.changed, [
          {
            key: { id: "42" },
            columns: [{ column: "name", source: "Ünïcode ∑ 😀 #42", target: "tampered" }],
          },
        ]);
        assert.deepEqual(items.missing, [{ id: "1500" }]);
        assert.deepEqual(items.extra, [{ id: "999999" }]);
        assert.deepEqual(statuses(result), { items: "mismatch", pairs: "identical", loose: "identical" });
      } finally {
        await db().pool.query(
          "truncate later.items; insert into later.items overriding system value select * from later.items_backup",
        );
      }
    });

    it("are left aside when the verification chunks otherwise, with the same verdict", async () => {
      const { result, served } = await verify(64);
      assert.deepEqual(served, []);
      assert.equal(result.identical, true, JSON.stringify(result.tables));
    });
  });

  it("are given up for a table the worker has not reached when the verification asks", async () => {
    const started = startEarlySourceSums({
      plan: laterPlan,
      sourcePath: fixture.path,
      order: ["items", "pairs", "loose"],
    });
    const spy = counted(started);
    try {
      // Asked before the worker reached it (it starts on the next tick): the verification computes it.
      assert.equal(started.take("loose", { kind: "row-hash", buckets: 1 }), undefined);
      const result = await verifyImport({
        plan: laterPlan,
        sourcePath: fixture.path,
        pool: db().pool,
        early: spy.early,
      });
      assert.equal(result.identical, true, JSON.stringify(result.tables));
      assert.ok(!spy.served.includes("loose"), `served: ${spy.served.join(", ")}`);
      await started.settled();
    } finally {
      await started.close();
    }
  });

  it("are left aside for a table with quarantined rows, which verifies identical without them", async () => {
    const sqlite = new Database(fixture.path);
    try {
      sqlite.prepare("update items set name = 'nul' || char(0) || 'inside' where id = 7").run();
    } finally {
      sqlite.close();
    }
    const result = await importSqlite({
      path: fixture.path,
      pool: db().pool,
      schema: "lenient",
      jobs: 2,
      onBadValue: "quarantine",
      verifyWhileLoading: true,
    });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    const items = result.tables.find((t) => t.source === "items")!;
    assert.deepEqual([items.rowsRead, items.rowsLoaded, items.rowsQuarantined], [2500, 2499, 1]);
    const verification = result.verification as unknown as VerifyResult;
    assert.equal(verification.identical, true, JSON.stringify(verification.tables));
    const verified = verification.tables.find((t) => t.table === "items")!;
    assert.equal(verified.sourceRows, 2499);
    assert.equal(verified.quarantinedRows, 1);
  });
});
