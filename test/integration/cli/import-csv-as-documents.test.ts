import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("csvdoc");

test("--no-typed loads a CSV as a document table; the default is a typed table", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-csvdoc-"));
  const csv = join(dir, "prices.csv");
  writeFileSync(csv, 'sku,name,price\nA1,Widget,9.99\nB2,"Gadget, large",19.5\n');

  const docs = await runCli(
    ["import", `csv:${csv}`, "--key", "/sku", "--no-typed", "--table", "price_docs"],
    {
      cwd: dir,
      env: { DATABASE_URL: db().url },
    },
  );
  assert.equal(docs.code, 0, docs.stderr);
  const { rows } = await db().pool.query("select sku, doc from price_docs order by sku");
  assert.deepEqual(rows, [
    { sku: "A1", doc: { sku: "A1", name: "Widget", price: "9.99" } },
    { sku: "B2", doc: { sku: "B2", name: "Gadget, large", price: "19.5" } },
  ]);

  const typed = await runCli(["import", `csv:${csv}`, "--key", "/sku", "--table", "price_rows"], {
    cwd: dir,
    env: { DATABASE_URL: db().url },
  });
  assert.equal(typed.code, 0, typed.stderr);
  const columns = await db().pool.query(
    "select column_name, data_type from information_schema.columns where table_name = 'price_rows' and column_name in ('sku', 'price') order by 1",
  );
  assert.deepEqual(columns.rows, [
    { column_name: "price", data_type: "numeric" },
    { column_name: "sku", data_type: "text" },
  ]);
});
