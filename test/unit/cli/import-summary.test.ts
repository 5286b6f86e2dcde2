import assert from "node:assert/strict";
import { test } from "node:test";
import { renderSqliteResult } from "../../../src/cli/render/import-summary.ts";
import type { ImportResult, StepResult } from "../../../src/load/import-sqlite.ts";
import { countSchemaObjects } from "../../../src/load/object-counts.ts";
import type { ImportPlan, TablePlan } from "../../../src/schema/plan.ts";

/** The parts of a table plan the counts read. */
function table(name: string, parts: Partial<TablePlan>): TablePlan {
  return {
    sourceName: name,
    targetName: name,
    keys: [],
    indexes: [],
    checks: [],
    foreignKeys: [],
    ...parts,
  } as TablePlan;
}

const INVOICES_SQL =
  "CREATE VIEW Invoices AS\n  SELECT InvoiceId, BillingCountry + ' ' + InvoiceDate AS label\n  FROM Invoice";

const plan = {
  tables: [
    table("Invoice", {
      keys: [{ sourceName: "pk", targetName: "Invoice_pkey", kind: "primary-key", sql: "" }],
      indexes: [{ sourceName: "Invoice_Date", targetName: "Invoice_Invoice_Date", kind: "index", sql: "" }],
      checks: [
        { kind: "check", targetName: "Invoice_check", addSql: "", validateSql: "", sourceSql: "Total >= 0" },
      ],
      foreignKeys: [
        {
          kind: "foreign-key",
          targetName: "Invoice_CustomerId_fkey",
          addSql: "",
          validateSql: "",
          sourceSql: "FOREIGN KEY (CustomerId) REFERENCES Customer",
        },
      ],
    }),
    table("Customer", {
      keys: [{ sourceName: "pk", targetName: "Customer_pkey", kind: "primary-key", sql: "" }],
    }),
  ],
  views: [
    {
      sourceName: "v_country_sales",
      targetName: "v_country_sales",
      sourceSql: "CREATE VIEW v_country_sales AS SELECT 1",
      sql: "create view ...",
    },
    {
      sourceName: "Invoices",
      targetName: "Invoices",
      sourceSql: INVOICES_SQL,
      problem: "text + text (SQLite's + on text)",
    },
    {
      sourceName: "v_json",
      targetName: "v_json",
      sourceSql: "CREATE VIEW v_json AS SELECT json_extract(Value, '$.a') FROM Setting",
      sql: "create view ...",
    },
  ],
  notes: [
    { object: "Invoice.Total", kind: "type", message: "NUMERIC(10,2) kept as numeric(10,2)" },
    {
      object: "Invoices",
      kind: "view",
      message: "view not created: text + text (SQLite's + on text)",
      sql: INVOICES_SQL,
    },
    {
      object: "Customer",
      kind: "check",
      message: "CHECK not translated: function glob() has no translation",
      sql: "Email GLOB '*@*'",
    },
    {
      object: "trg_invoice_audit",
      kind: "skipped",
      message: "trigger not imported: SQLite triggers are not translated",
    },
    {
      object: "trg_customer_del",
      kind: "skipped",
      message: "trigger not imported: SQLite triggers are not translated",
    },
    {
      object: "Customer.Email",
      kind: "default",
      message: "DEFAULT (lower('X')) not translated; column created without a default",
    },
  ],
} as unknown as ImportPlan;

const steps: StepResult[] = [
  { step: "schema", status: "done" },
  { step: "key:Invoice:Invoice_pkey", status: "done" },
  { step: "key:Customer:Customer_pkey", status: "done" },
  { step: "index:Invoice_Invoice_Date", status: "done" },
  { step: "add:Invoice:Invoice_check", status: "done" },
  { step: "add:Invoice:Invoice_CustomerId_fkey", status: "done" },
  {
    step: "validate:Invoice:Invoice_CustomerId_fkey",
    status: "failed",
    detail: 'insert or update on table "Invoice" violates foreign key constraint "Invoice_CustomerId_fkey"',
  },
  { step: "view:v_country_sales", status: "done" },
  { step: "view:v_json", status: "failed", detail: "function json_extract(text, unknown) does not exist" },
];

function result(overrides: Partial<ImportResult> = {}): ImportResult {
  return {
    ok: true,
    runId: "20261201120000-abcdef",
    resumed: false,
    dryRun: false,
    source: { path: "/data/music.db", spec: "sqlite:music.db" },
    target: { url: "postgres://app:********@db:5432/app" } as ImportResult["target"],
    schema: "music",
    plan,
    sql: [],
    dropped: [],
    untranslated: [],
    tables: [
      {
        source: "Invoice",
        target: "Invoice",
        status: "complete",
        rowsRead: 412,
        rowsLoaded: 412,
        rowsQuarantined: 0,
        conversions: {},
        chunks: { done: 1, total: 1 },
        seconds: 0.031,
      },
      {
        source: "Customer",
        target: "Customer",
        status: "complete",
        rowsRead: 59,
        rowsLoaded: 59,
        rowsQuarantined: 0,
        conversions: { Email: 2 },
        chunks: { done: 1, total: 1 },
        seconds: 0.012,
      },
    ],
    steps,
    notes: plan.notes,
    warnings: [
      'foreign-key Invoice_CustomerId_fkey on Invoice left NOT VALID (enforced for new rows only): insert or update on table "Invoice" violates foreign key constraint "Invoice_CustomerId_fkey"',
      "view v_json not created: function json_extract(text, unknown) does not exist. Its SQLite SQL: CREATE VIEW v_json AS SELECT json_extract(Value, '$.a') FROM Setting",
      "Customer.Email: NOT NULL column with a default that could not be translated: inserts that relied on it will fail",
    ],
    totals: { rowsRead: 471, rowsLoaded: 471, rowsQuarantined: 0, conversions: 2 },
    phases: { data: 0.05 },
    verification: { identical: true },
    objects: countSchemaObjects(plan, steps),
    nextSteps: [],
    seconds: 1.234,
    ...overrides,
  };
}

test("counts per kind of schema object: what the source had against what the target has", () => {
  assert.deepEqual(countSchemaObjects(plan, steps).counts, [
    { kind: "primary-key", source: 2, created: 2 },
    { kind: "index", source: 1, created: 1 },
    { kind: "foreign-key", source: 1, created: 1 },
    { kind: "check", source: 2, created: 1 },
    { kind: "view", source: 3, created: 1 },
    { kind: "trigger", source: 2, created: 0, reportedOnly: true },
  ]);
});

test("the summary: rows per table, one line of schema objects, the outcome, then what was not created by kind", () => {
  assert.equal(
    renderSqliteResult(result(), "/reports/import-1.json"),
    [
      "table     rows read  loaded  quarantined  conversions    time",
      "--------  ---------  ------  -----------  -----------  ------",
      "Invoice         412     412            0            0  0.03 s",
      "Customer         59      59            0            2  0.01 s",
      "",
      "schema: primary keys 2/2, indexes 1/1, foreign keys 1/1, checks 1/2, views 1/3, triggers 0/2 (reported)",
      "471 rows loaded into schema music at postgres://app:********@db:5432/app in 1.23 s (data 0.05 s)",
      "verified: identical (counts and per-row checksums)",
      "",
      "foreign keys: 1 left NOT VALID",
      '  foreign key "Invoice_CustomerId_fkey" on "Invoice": left NOT VALID (enforced for new rows only): insert or update on table "Invoice" violates foreign key constraint "Invoice_CustomerId_fkey"',
      "checks: 1 of 2 not created",
      '  check on "Customer": function glob() has no translation',
      "views: 2 of 3 not created",
      `  view "Invoices": text + text (SQLite's + on text)`,
      '  view "v_json": function json_extract(text, unknown) does not exist',
      "triggers: 2 of 2 not created: SQLite triggers are not translated",
      '  trigger "trg_invoice_audit"',
      '  trigger "trg_customer_del"',
      "(the SQLite SQL of each is in the report; --verbose prints it here)",
      "",
      "notes:",
      "  - Customer.Email: DEFAULT (lower('X')) not translated; column created without a default",
      "",
      "warnings:",
      "  ! Customer.Email: NOT NULL column with a default that could not be translated: inserts that relied on it will fail",
      "report: /reports/import-1.json",
    ].join("\n"),
  );
});

test("--verbose prints each object's SQLite SQL under its line; a resumed run says so", () => {
  const text = renderSqliteResult(result({ resumed: true }), undefined, { verbose: true });
  const lines = text.split("\n");
  const at = lines.indexOf(`  view "Invoices": text + text (SQLite's + on text)`);
  assert.deepEqual(lines.slice(at, at + 4), [
    `  view "Invoices": text + text (SQLite's + on text)`,
    "      CREATE VIEW Invoices AS",
    "        SELECT InvoiceId, BillingCountry + ' ' + InvoiceDate AS label",
    "        FROM Invoice",
  ]);
  assert.ok(
    lines.includes(
      "resumed run 20261201120000-abcdef: the chunks committed before were kept, the rest loaded now (the figures count both)",
    ),
  );
  assert.ok(!text.includes("--verbose prints it here"));
  // Without --verbose, no SQL reaches the terminal.
  assert.ok(!renderSqliteResult(result(), undefined).includes("SELECT InvoiceId"));
});

test("indexes PostgreSQL refused or the plan could not translate, and virtual tables, are counted and named", () => {
  const withIndexes = {
    tables: [
      table("events", {
        keys: [{ sourceName: "u", targetName: "events_code_key", kind: "unique", sql: "" }],
        indexes: [
          { sourceName: "by_day", targetName: "events_by_day", kind: "index", sql: "" },
          { sourceName: "by_kind", targetName: "events_by_kind", kind: "index", sql: "" },
        ],
      }),
    ],
    views: [],
    notes: [
      {
        object: "recent",
        kind: "index",
        message: "partial index not created: WHERE function julianday() has no translation",
        sql: "CREATE INDEX recent ON events (day) WHERE julianday(day) > 2460000",
      },
      {
        object: "docs",
        kind: "skipped",
        message: "virtual table not imported: virtual tables (FTS, R*Tree...) are not imported",
      },
      {
        object: "docs_data",
        kind: "skipped",
        message: "shadow table not imported: internal table of virtual table docs",
      },
    ],
  } as unknown as ImportPlan;
  const objects = countSchemaObjects(withIndexes, [
    {
      step: "key:events:events_code_key",
      status: "failed",
      detail: "could not create unique index\nDETAIL: Key (code)=(7) is duplicated.",
    },
    { step: "index:events_by_day", status: "done" },
    { step: "index:events_by_kind", status: "skipped" },
  ]);
  assert.deepEqual(objects.counts, [
    { kind: "index", source: 4, created: 2 },
    { kind: "virtual-table", source: 1, created: 0, reportedOnly: true },
  ]);
  assert.deepEqual(
    objects.problems.map((p) => [p.kind, p.object, p.reason]),
    [
      ["index", "events_code_key", "could not create unique index"],
      ["index", "recent", "WHERE function julianday() has no translation"],
      ["virtual-table", "docs", "virtual tables (FTS, R*Tree...) are not imported"],
    ],
  );
});
