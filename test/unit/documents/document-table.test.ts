import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createTableSql,
  docPathExpression,
  documentTablePlan,
  indexDefinitions,
  parseColumnSpec,
  parseKeySpecs,
  primaryKeySql,
  typedTablePlan,
} from "../../../src/documents/document-table.ts";

test("key specs: pointers, composite keys, types", () => {
  assert.deepEqual(parseKeySpecs("/k_number"), [
    { pointer: "/k_number", path: ["k_number"], column: "k_number", type: "text" },
  ]);
  assert.deepEqual(
    parseKeySpecs("/country,/id:bigint").map((k) => [k.column, k.type]),
    [
      ["country", "text"],
      ["id", "bigint"],
    ],
  );
  assert.deepEqual(parseKeySpecs(["/openfda/k~1n"])[0]!.column, "openfda_k/n");
  assert.throws(() => parseKeySpecs("k_number"), /not a JSON pointer/);
  assert.throws(() => parseKeySpecs("/id:float128"), /unknown type "float128"/);
  assert.throws(() => parseKeySpecs("/a,/a"), /names the column "a" twice/);
});

test("column specs: NAME=/path:type", () => {
  assert.deepEqual(parseColumnSpec("decision_date=/decision_date:date"), {
    name: "decision_date",
    pointer: "/decision_date",
    path: ["decision_date"],
    type: "date",
  });
  assert.equal(parseColumnSpec("cls=/openfda/device_class").type, "text");
  assert.equal(parseColumnSpec("n=/n:int8").type, "bigint");
  assert.throws(() => parseColumnSpec("/decision_date:date"), /write NAME=\/path:type/);
});

test("document table DDL, exact", () => {
  const plan = documentTablePlan({
    schema: "fda",
    table: "clearances",
    keys: parseKeySpecs("/k_number"),
    extraColumns: [parseColumnSpec("decision_date=/decision_date:date")],
    gin: true,
    trgmPaths: [["openfda", "device_name"]],
  });
  assert.equal(
    createTableSql(plan),
    `create table "fda"."clearances" (
  "k_number" text not null,
  "doc" jsonb not null,
  "decision_date" date,
  "source_file" text not null,
  "content_hash" text not null,
  "loaded_at" timestamptz not null default now()
)`,
  );
  assert.deepEqual(plan.loadColumns, ["k_number", "doc", "decision_date", "source_file", "content_hash"]);
  assert.equal(
    primaryKeySql(plan, "clearances", "clearances_pkey"),
    `alter table "fda"."clearances" add constraint "clearances_pkey" primary key ("k_number")`,
  );
  assert.deepEqual(indexDefinitions(plan), [
    {
      name: "clearances_doc_gin",
      sql: `create index if not exists "clearances_doc_gin" on "fda"."clearances" using gin ("doc" jsonb_path_ops)`,
    },
    {
      name: "clearances_openfda_device_name_trgm",
      sql: `create index if not exists "clearances_openfda_device_name_trgm" on "fda"."clearances" using gin (("doc" #>> '{"openfda","device_name"}') gin_trgm_ops)`,
    },
  ]);
  assert.equal(docPathExpression("doc", ['we"ird', "it's"]), `("doc" #>> E'{"we\\\\"ird","it''s"}')`);
  assert.throws(
    () =>
      documentTablePlan({
        schema: "s",
        table: "t",
        keys: parseKeySpecs("/doc"),
        extraColumns: [],
        gin: false,
        trgmPaths: [],
      }),
    /clashes with a document table column/,
  );
});

test("typed table DDL, with a primary key inline", () => {
  const plan = typedTablePlan({
    schema: "public",
    table: "people",
    columns: [
      { name: "id", type: "bigint", nullable: false },
      { name: "name", type: "text", nullable: true },
    ],
    keyColumns: ["id"],
    trgmColumns: ["name"],
  });
  assert.equal(
    createTableSql(plan, "people", true),
    `create table "public"."people" (
  "id" bigint not null,
  "name" text,
  "_source_file" text not null,
  "_content_hash" text not null,
  "_loaded_at" timestamptz not null default now(),
  constraint "people_pkey" primary key ("id")
)`,
  );
  assert.equal(
    indexDefinitions(plan)[0]!.sql,
    `create index if not exists "people_name_trgm" on "public"."people" using gin ("name" gin_trgm_ops)`,
  );
});
