import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import type { ImportPlan } from "../../../src/schema/plan.ts";
import type { TableVerification } from "../../../src/verify/types.ts";
import { verifyImport } from "../../../src/verify/verify-import.ts";
import type { VerifyResult } from "../../../src/verify/verify-result.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "./fixture.ts";

/**
 * After a real import, tamper with what PostgreSQL stores, one fault at a time, and check that
 * verification names the right table, key and column, and nothing else; then restore and check
 * that it is identical again.
 */
const db = useTestDatabase("vfault");
let fixture: Fixture;
let plan: ImportPlan;

async function verify(): Promise<VerifyResult> {
  // Worker threads here (the CLI tests cover the in-thread path on small machines).
  return verifyImport({
    plan,
    sourcePath: fixture.path,
    pool: db().pool,
    chunkRows: 256,
    jobs: 2,
    workers: true,
  });
}

function table(result: VerifyResult, name: string): TableVerification {
  const found = result.tables.find((t) => t.table === name);
  assert.ok(found, `table ${name} in the result`);
  return found;
}

async function sql(text: string): Promise<void> {
  await db().pool.query(text);
}

/** Applies the fault, runs the checks, and always restores the table from its backup copy. */
async function tampered(name: string, faults: string[], check: () => Promise<void>): Promise<void> {
  try {
    for (const fault of faults) await sql(fault);
    await check();
  } finally {
    await sql(
      `truncate public.${name}; insert into public.${name} overriding system value select * from backup.${name}`,
    );
  }
}

function onlyDifference(result: VerifyResult, name: string): TableVerification {
  assert.equal(result.status, "mismatch");
  assert.equal(result.identical, false);
  for (const t of result.tables) {
    if (t.table !== name) assert.equal(t.status, "identical", `${t.table} untouched`);
  }
  const t = table(result, name);
  assert.equal(t.status, "mismatch");
  return t;
}

describe("fault injection after an import", () => {
  before(async () => {
    fixture = makeFixture();
    const imported = await importSqlite({ path: fixture.path, pool: db().pool, verify: false, jobs: 2 });
    assert.equal(imported.ok, true, JSON.stringify(imported.error));
    plan = imported.plan;
    await sql("create schema backup");
    for (const name of ["items", "pairs", "loose"])
      await sql(`create table backup.${name} as select * from public.${name}`);
  });

  after(() => fixture?.cleanup());

  it("is identical right after the import, with several chunks per table", async () => {
    const result = await verify();
    assert.equal(
      result.status,
      "identical",
      JSON.stringify(result.tables.filter((t) => t.status !== "identical")),
    );
    const items = table(result, "items");
    assert.equal(items.sourceRows, 3000);
    assert.equal(items.targetRows, 3000);
    assert.ok(items.chunking.chunks >= 8, `chunks: ${items.chunking.chunks}`);
    assert.equal(items.chunking.strategy, "key-range");
    assert.equal(table(result, "pairs").chunking.strategy, "key-hash");
    assert.equal(table(result, "loose").chunking.strategy, "row-hash");
    assert.equal(items.checksums.source, items.checksums.target);
    assert.match(items.checksums.source, /^[0-9a-f]{64}$/);
  });

  it("names the key and column of a changed value", async () => {
    await tampered("items", ["update items set name = 'tampered' where id = 42"], async () => {
      const t = onlyDifference(await verify(), "items");
      assert.equal(t.changedRows, 1);
      assert.equal(t.missingRows + t.extraRows, 0);
      assert.deepEqual(t.changed, [
        { key: { id: "42" }, columns: [{ column: "name", source: "Ünïcode ∑ 😀 #42", target: "tampered" }] },
      ]);
    });
  });

  it("names a deleted row as missing", async () => {
    await tampered("items", ["delete from items where id = 1500"], async () => {
      const t = onlyDifference(await verify(), "items");
      assert.deepEqual(t.missing, [{ id: "1500" }]);
      assert.equal(t.targetRows, 2999);
      assert.equal(t.changedRows + t.extraRows, 0);
    });
  });

  it("names an added row as extra", async () => {
    await tampered(
      "items",
      ["insert into items (id, name) overriding system value values (999999, 'intruder')"],
      async () => {
        const t = onlyDifference(await verify(), "items");
        assert.deepEqual(t.extra, [{ id: "999999" }]);
        assert.equal(t.changedRows + t.missingRows, 0);
      },
    );
  });

  it("reports a truncated table with its missing keys", async () => {
    await tampered("pairs", ["truncate pairs"], async () => {
      const t = onlyDifference(await verify(), "pairs");
      assert.equal(t.targetRows, 0);
      assert.equal(t.sourceRows, 200);
      assert.equal(t.missingRows, 200);
      assert.equal(t.complete, true);
      assert.equal(t.missing.length, 20);
      for (const key of t.missing) assert.deepEqual(Object.keys(key), ["a", "b"]);
    });
  });

  it("finds a changed nested jsonb value", async () => {
    await tampered(
      "items",
      [`update items set doc = jsonb_set(doc, '{nested,deep,s}', '"y7"') where id = 7`],
      async () => {
        const t = onlyDifference(await verify(), "items");
        assert.equal(t.changed.length, 1);
        assert.deepEqual(t.changed[0]!.key, { id: "7" });
        assert.equal(t.changed[0]!.columns.length, 1);
        const [difference] = t.changed[0]!.columns;
        assert.equal(difference!.column, "doc");
        assert.match(difference!.source!, /"s": "x7"/);
        assert.match(difference!.target!, /"s": "y7"/);
      },
    );
  });

  it("finds one flipped byte in a bytea", async () => {
    await tampered(
      "items",
      ["update items set data = set_byte(data, 3, get_byte(data, 3) # 1) where id = 8"],
      async () => {
        const t = onlyDifference(await verify(), "items");
        assert.deepEqual(t.changed, [
          { key: { id: "8" }, columns: [{ column: "data", source: "080000ff10", target: "080000fe10" }] },
        ]);
      },
    );
  });

  it("finds a timestamp moved by one microsecond", async () => {
    await tampered(
      "items",
      ["update items set created_at = created_at + interval '1 microsecond' where id = 9"],
      async () => {
        const t = onlyDifference(await verify(), "items");
        assert.equal(t.changed.length, 1);
        assert.deepEqual(t.changed[0]!.key, { id: "9" });
        const [difference] = t.changed[0]!.columns;
        assert.equal(difference!.column, "created_at");
        assert.equal(difference!.source, "2024-01-19 09:13:29.071271");
        assert.equal(difference!.target, "2024-01-19 09:13:29.071272");
      },
    );
  });

  it("finds a value set to NULL, and an empty string that is not NULL", async () => {
    await tampered("pairs", ["update pairs set v = '' where a = 'k0' and b = 0"], async () => {
      const t = onlyDifference(await verify(), "pairs");
      assert.deepEqual(t.changed, [
        { key: { a: "k0", b: "0" }, columns: [{ column: "v", source: null, target: "" }] },
      ]);
    });
  });

  it("finds duplicated and missing rows in a table without a key", async () => {
    await tampered(
      "loose",
      [
        "insert into loose values (5, 'y5')",
        "delete from loose where ctid = (select min(ctid) from loose where x = 7)",
      ],
      async () => {
        const t = onlyDifference(await verify(), "loose");
        assert.deepEqual(t.extra, [{ x: "5", y: "y5" }]);
        assert.deepEqual(t.missing, [{ x: "7", y: "y7" }]);
      },
    );
  });

  it("samples the same rows on both sides and still finds a fault in the sample", async () => {
    const full = await verifyImport({ plan, sourcePath: fixture.path, pool: db().pool, sample: 0.25 });
    assert.equal(full.status, "identical");
    const items = table(full, "items");
    assert.ok(items.sample);
    assert.ok(items.sample.sourceRows > 500 && items.sample.sourceRows < 1000, `${items.sample.sourceRows}`);
    assert.equal(items.sample.sourceRows, items.sample.targetRows);
    await tampered("items", ["update items set score = -1"], async () => {
      const result = await verifyImport({
        plan,
        sourcePath: fixture.path,
        pool: db().pool,
        sample: 0.25,
        maxDiffs: 5,
      });
      const t = table(result, "items");
      assert.equal(t.status, "mismatch");
      assert.ok(t.changedRows > 0 && t.changedRows <= items.sample!.sourceRows, `${t.changedRows}`);
      assert.ok(t.changed.every((c) => c.columns.length === 1 && c.columns[0]!.column === "score"));
      assert.equal(t.changed.length, 5);
    });
    assert.equal((await verify()).status, "identical");
  });
});
