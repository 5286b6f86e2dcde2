import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import {
  eventId,
  generateDocuments,
  generateSmallDocuments,
  kNumber,
  productCode,
} from "../../../bench/generate-documents.ts";
import {
  generateOneTableSqlite,
  generateSqlite,
  oneTableSizes,
  tableSizes,
} from "../../../bench/generate-sqlite.ts";
import { Random } from "../../../bench/lib/random.ts";

const dir = mkdtempSync(join(os.tmpdir(), "pgshift-bench-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("table sizes add up to the requested rows", () => {
  for (const rows of [600_000, 5_000_000, 12_345]) {
    const sizes = tableSizes(rows);
    assert.equal(Object.keys(sizes).length, 11);
    assert.equal(
      Object.values(sizes).reduce((a, b) => a + b, 0),
      rows,
    );
  }
});

test("the generated SQLite database has 11 tables, valid foreign keys and the value kinds promised", () => {
  const generated = generateSqlite({ path: join(dir, "b.db"), rows: 3000 });
  assert.equal(generated.rows, 3000);
  assert.equal(generated.foreignKeys, 12);
  assert.ok(generated.indexes >= 13);
  const db = new Database(generated.path, { readonly: true });
  try {
    for (const [table, rows] of Object.entries(generated.tables)) {
      assert.equal((db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n, rows, table);
    }
    assert.deepEqual(db.prepare("pragma foreign_key_check").all(), []);
    const user = db.prepare("select typeof(created_at) as t, created_at as v from users limit 1").get() as {
      t: string;
      v: number;
    };
    assert.equal(user.t, "integer");
    assert.ok(user.v > Date.UTC(2018, 0, 1) && user.v < Date.UTC(2025, 0, 1), "a millisecond epoch");
    assert.equal(
      (db.prepare("select typeof(content) as t from attachments limit 1").get() as { t: string }).t,
      "blob",
    );
    const settings = db.prepare("select settings from users where settings is not null limit 1").get() as {
      settings: string;
    };
    assert.equal(typeof JSON.parse(settings.settings), "object");
    assert.equal(
      (db.prepare("select typeof(total) as t from invoices limit 1").get() as { t: string }).t,
      "real",
    );
    const multiline = db
      .prepare("select count(*) as n from comments where body like '%' || char(10) || '%'")
      .get() as { n: number };
    assert.ok(multiline.n > 0, "some text values span lines");
  } finally {
    db.close();
  }
});

test("the one-table shape: >= 90 % in one table, NUMERIC reals, a mixed column, ISO dates, index and FK", () => {
  const sizes = oneTableSizes(650_000);
  assert.equal(sizes.sites! + sizes.observations!, 650_000);
  assert.ok(sizes.observations! / 650_000 >= 0.9);
  const generated = generateOneTableSqlite({ path: join(dir, "one.db"), rows: 3000 });
  assert.equal(generated.rows, 3000);
  assert.equal(generated.indexes, 1);
  assert.equal(generated.foreignKeys, 1);
  const db = new Database(generated.path, { readonly: true });
  try {
    assert.deepEqual(db.prepare("pragma foreign_key_check").all(), []);
    assert.equal(
      (
        db.prepare("select type from pragma_table_info('observations') where name = 'lat'").get() as {
          type: string;
        }
      ).type,
      "numeric",
    );
    const latKinds = db.prepare("select distinct typeof(lat) as t from observations").all() as {
      t: string;
    }[];
    assert.deepEqual(latKinds, [{ t: "real" }]);
    const readingKinds = (
      db.prepare("select distinct typeof(reading) as t from observations order by 1").all() as { t: string }[]
    ).map((r) => r.t);
    assert.deepEqual(readingKinds, ["integer", "real", "text"]);
    const date = db
      .prepare("select typeof(observed_on) as t, observed_on as v from observations limit 1")
      .get() as {
      t: string;
      v: string;
    };
    assert.equal(date.t, "text");
    assert.match(date.v, /^\d{4}-\d{2}-\d{2}$/);
  } finally {
    db.close();
  }
});

test("generation is deterministic", () => {
  const a = new Random(42);
  const b = new Random(42);
  assert.deepEqual(
    Array.from({ length: 5 }, () => a.int(0, 1000)),
    Array.from({ length: 5 }, () => b.int(0, 1000)),
  );
});

test("documents: NDJSON and paginated envelopes hold the same records, keys unique", async () => {
  const generated = await generateDocuments({ outDir: join(dir, "docs"), count: 250, pageSize: 100 });
  assert.equal(generated.jsonFiles, 3);
  const lines = readFileSync(generated.ndjsonPath, "utf8").trim().split("\n");
  assert.equal(lines.length, 250);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(first.k_number, kNumber(0));
  assert.equal(typeof (first.openfda as Record<string, unknown>).device_class, "string");
  assert.ok(Array.isArray((first.openfda as Record<string, unknown>).registration_number));
  const files = readdirSync(generated.jsonDir).sort();
  assert.deepEqual(files, ["page-000000.json", "page-000001.json", "page-000002.json"]);
  const pages = files.map(
    (f) =>
      JSON.parse(readFileSync(join(generated.jsonDir, f), "utf8")) as {
        meta: { results: { skip: number } };
        results: unknown[];
      },
  );
  assert.deepEqual(
    pages.map((p) => [p.meta.results.skip, p.results.length]),
    [
      [0, 100],
      [100, 100],
      [200, 50],
    ],
  );
  assert.deepEqual(pages[2]!.results[49], JSON.parse(lines[249]!));
  assert.equal(new Set(lines.map((l) => (JSON.parse(l) as { k_number: string }).k_number)).size, 250);
  assert.equal(productCode(0), "AAA");
  assert.equal(productCode(27), "ABB");
});

test("small documents: about 100 bytes each, unique keys", async () => {
  const generated = await generateSmallDocuments({ path: join(dir, "small.ndjson"), count: 2000 });
  const lines = readFileSync(generated.ndjsonPath, "utf8").trim().split("\n");
  assert.equal(lines.length, 2000);
  const mean = generated.ndjsonBytes / 2000;
  assert.ok(mean >= 80 && mean <= 120, `mean document size ${mean}`);
  const ids = lines.map((line) => (JSON.parse(line) as { id: string }).id);
  assert.equal(new Set(ids).size, 2000);
  assert.equal(ids[0], eventId(0));
});
