import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { foreignKeyOrder, mapTables } from "../../../src/load/data-only/table-mapping.ts";
import type { TargetTable } from "../../../src/load/data-only/target-catalog.ts";
import { conversionForTarget, timestampPrecision } from "../../../src/load/data-only/target-conversion.ts";
import type { ColumnPlan } from "../../../src/schema/plan.ts";

const table = (name: string, columns: string[]): TargetTable => ({
  name,
  primaryKey: ["id"],
  columns: columns.map((c) => ({
    name: c,
    type: "text",
    typname: "text",
    notNull: c === "must",
    hasDefault: false,
    identity: false,
  })),
});

describe("mapTables", () => {
  it("matches exact, case-insensitive, snake_case and map-file names, and lists what is left", () => {
    const mapping = mapTables(
      [
        { name: "User", columns: ["id", "createdAt", "Email", "gone"] },
        { name: "blogPost", columns: ["id", "x"] },
        { name: "_prisma_migrations", columns: ["id"] },
        { name: "orphan", columns: ["id"] },
      ],
      [
        table("user", ["id", "created_at", "email", "must"]),
        table("blog_post", ["id", "y"]),
        table("alembic_version", ["v"]),
        table("spare", ["id"]),
      ],
      { "blogPost.x": "y" },
    );
    assert.deepEqual(
      mapping.tables.map((t) => [
        t.source,
        t.target,
        t.how,
        t.columns.map((c) => `${c.source}>${c.target}:${c.how}`),
      ]),
      [
        [
          "User",
          "user",
          "case-insensitive",
          ["id>id:exact", "createdAt>created_at:snake_case", "Email>email:case-insensitive"],
        ],
        ["blogPost", "blog_post", "snake_case", ["id>id:exact", "x>y:map-file"]],
      ],
    );
    assert.deepEqual(mapping.tables[0]!.unmatchedSource, ["gone"]);
    assert.deepEqual(mapping.tables[0]!.unmatchedTarget, ["must"]);
    assert.deepEqual(mapping.missingTables, ["orphan"]);
    assert.deepEqual(mapping.extraTables, ["spare"]);
  });
});

describe("foreignKeyOrder", () => {
  it("puts referenced tables first and finds cycles, self-references included", () => {
    const { order, cycles } = foreignKeyOrder(
      ["post", "user", "comment", "a", "b", "tree"],
      [
        { table: "post", references: "user" },
        { table: "comment", references: "post" },
        { table: "a", references: "b" },
        { table: "b", references: "a" },
        { table: "tree", references: "tree" },
      ],
    );
    assert.ok(order.indexOf("user") < order.indexOf("post"));
    assert.ok(order.indexOf("post") < order.indexOf("comment"));
    assert.deepEqual(cycles, [["a", "b"], ["tree"]]);
  });
});

describe("conversionForTarget", () => {
  const source = (conversion: ColumnPlan["conversion"]) => ({ conversion }) as ColumnPlan;
  const target = (typname: string, type = typname) => ({
    name: "c",
    type,
    typname,
    notNull: false,
    hasDefault: false,
    identity: false,
  });
  it("converts to the target's type, not the one pgshift would choose", () => {
    assert.equal(
      conversionForTarget(target("timestamp", "timestamp(3) without time zone"), source("integer")),
      "epoch-ms",
    );
    assert.equal(conversionForTarget(target("timestamptz"), source("text")), "timestamptz");
    assert.equal(conversionForTarget(target("timestamp"), source("epoch-s")), "epoch-s");
    assert.equal(conversionForTarget(target("bool"), source("integer")), "boolean");
    assert.equal(conversionForTarget(target("jsonb"), source("text")), "jsonb");
    assert.equal(conversionForTarget(target("bytea"), source("bytea")), "bytea");
    assert.equal(conversionForTarget(target("numeric"), source("real")), "real");
    assert.equal(conversionForTarget(target("int4"), source("text")), "text");
    assert.equal(conversionForTarget(target("Status", '"Status"'), source("text")), "text");
    assert.equal(timestampPrecision("timestamp(3) without time zone"), 3);
    assert.equal(timestampPrecision("timestamp with time zone"), 6);
  });
});
