import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { affinityOf, mapColumnType } from "../../../src/schema/type-mapping.ts";
import type { SqliteColumn } from "../../../src/sources/sqlite/sqlite-catalog.ts";
import type { ColumnStats } from "../../../src/sources/sqlite/sqlite-scan.ts";

function column(declaredType: string): SqliteColumn {
  return {
    name: "c",
    declaredType,
    notNull: false,
    defaultSql: null,
    primaryKeyPosition: 0,
  };
}

function stats(partial: Partial<ColumnStats>): ColumnStats {
  return {
    nulls: 0,
    integers: 0,
    reals: 0,
    texts: 0,
    blobs: 0,
    textMaxLength: 0,
    nonBooleanIntegers: 0,
    ...partial,
  };
}

describe("affinityOf", () => {
  it("follows SQLite's rules", () => {
    assert.equal(affinityOf("INTEGER"), "integer");
    assert.equal(affinityOf("BIGINT"), "integer");
    assert.equal(affinityOf("VARCHAR(20)"), "text");
    assert.equal(affinityOf("CLOB"), "text");
    assert.equal(affinityOf(""), "blob");
    assert.equal(affinityOf("DOUBLE PRECISION"), "real");
    assert.equal(affinityOf("DECIMAL(10,2)"), "numeric");
    assert.equal(affinityOf("DATETIME"), "numeric");
  });
});

describe("mapColumnType", () => {
  it("chooses integer or bigint by the stored range", () => {
    assert.deepEqual(
      mapColumnType(column("INTEGER"), stats({ integers: 3, integerMin: -5n, integerMax: 2147483647n })),
      {
        pgType: "integer",
        conversion: "integer",
        note: "declared INTEGER (64-bit in SQLite), every stored value fits in 32 bits: integer",
      },
    );
    assert.deepEqual(
      mapColumnType(column("SMALLINT"), stats({ integers: 3, integerMin: -5n, integerMax: 7n })),
      { pgType: "integer", conversion: "integer" },
    );
    assert.deepEqual(
      mapColumnType(column("INTEGER"), stats({ integers: 3, integerMin: 0n, integerMax: 2147483648n })),
      {
        pgType: "bigint",
        conversion: "integer",
      },
    );
  });
  it("maps REAL to double precision, never real", () => {
    assert.deepEqual(mapColumnType(column("REAL"), stats({ reals: 2 })), {
      pgType: "double precision",
      conversion: "real",
    });
    assert.deepEqual(mapColumnType(column("FLOAT"), stats({})), {
      pgType: "double precision",
      conversion: "real",
    });
  });
  it("keeps a declared BIGINT / INT8 as bigint whatever the values (a floor, never narrowed)", () => {
    for (const declared of ["BIGINT", "INT8", "UNSIGNED BIG INT", "bigint"])
      assert.deepEqual(
        mapColumnType(column(declared), stats({ integers: 3, integerMin: 1n, integerMax: 3n })),
        { pgType: "bigint", conversion: "integer" },
        declared,
      );
  });
  it("keeps NUMERIC(p,s) / DECIMAL(p,s) when every value fits, else widens to numeric and says why", () => {
    assert.deepEqual(
      mapColumnType(
        column("DECIMAL(10,2)"),
        stats({
          reals: 1,
          integers: 1,
          integerMin: 1n,
          integerMax: 1n,
          decimalIntegerDigits: 8,
          decimalFractionDigits: 2,
        }),
      ),
      { pgType: "numeric(10,2)", conversion: "numeric" },
    );
    assert.deepEqual(mapColumnType(column("NUMERIC(5)"), stats({})), {
      pgType: "numeric(5,0)",
      conversion: "numeric",
    });
    assert.deepEqual(
      mapColumnType(
        column("NUMERIC(10,2)"),
        stats({ reals: 1, decimalIntegerDigits: 1, decimalFractionDigits: 3 }),
      ),
      {
        pgType: "numeric",
        conversion: "numeric",
        note: "declared NUMERIC(10,2) but stores values with 3 digits after the point: numeric without precision, so no value is rounded",
      },
    );
    assert.deepEqual(
      mapColumnType(
        column("NUMERIC(4,2)"),
        stats({ integers: 1, decimalIntegerDigits: 3, decimalFractionDigits: 0 }),
      ),
      {
        pgType: "numeric",
        conversion: "numeric",
        note: "declared NUMERIC(4,2) but stores values with 3 digits before the point: numeric without precision, so no value is rounded",
      },
    );
    assert.deepEqual(mapColumnType(column("DECIMAL"), stats({ reals: 1 })), {
      pgType: "numeric",
      conversion: "numeric",
    });
  });
  it("uses varchar(n) only when every value fits", () => {
    assert.deepEqual(mapColumnType(column("VARCHAR(10)"), stats({ texts: 2, textMaxLength: 10 })), {
      pgType: "varchar(10)",
      conversion: "text",
    });
    assert.deepEqual(mapColumnType(column("VARCHAR(3)"), stats({ texts: 2, textMaxLength: 7 })), {
      pgType: "text",
      conversion: "text",
      note: "declared VARCHAR(3) but holds values up to 7 characters: text",
    });
  });
  it("keeps a declared BLOB column with no values as bytea; an untyped empty one is text", () => {
    assert.deepEqual(mapColumnType(column("BLOB"), stats({ nulls: 3 })), {
      pgType: "bytea",
      conversion: "bytea",
    });
    assert.deepEqual(mapColumnType(column(""), stats({})), {
      pgType: "text",
      conversion: "text",
      note: "no declared type and no values: text",
    });
  });
  it("maps a blob/number mix to bytea, numbers as their decimal text", () => {
    assert.deepEqual(
      mapColumnType(column(""), stats({ blobs: 1, integers: 1, reals: 1, integerMin: 5n, integerMax: 5n })),
      {
        pgType: "bytea",
        conversion: "bytea",
        note: "declared (no type) but stores 1 integer, 1 real, 1 blob: bytea, text kept as its UTF-8 bytes and numbers as their decimal text",
      },
    );
  });
  it("maps BLOB to bytea, and a blob/text mix to bytea with a note", () => {
    assert.deepEqual(mapColumnType(column("BLOB"), stats({ blobs: 1 })), {
      pgType: "bytea",
      conversion: "bytea",
    });
    assert.deepEqual(mapColumnType(column("BLOB"), stats({ blobs: 1, texts: 1 })), {
      pgType: "bytea",
      conversion: "bytea",
      note: "declared BLOB but stores 1 text, 1 blob: bytea, text kept as its UTF-8 bytes and numbers as their decimal text",
    });
  });
  it("maps BOOLEAN holding only 0/1 to boolean, otherwise keeps the numbers", () => {
    assert.deepEqual(
      mapColumnType(column("BOOLEAN"), stats({ integers: 5, integerMin: 0n, integerMax: 1n })),
      {
        pgType: "boolean",
        conversion: "boolean",
      },
    );
    assert.deepEqual(
      mapColumnType(
        column("BOOLEAN"),
        stats({
          integers: 5,
          integerMin: 0n,
          integerMax: 2n,
          nonBooleanIntegers: 1,
        }),
      ),
      {
        pgType: "integer",
        conversion: "integer",
        note: "declared BOOLEAN but stores values other than 0 and 1: integer",
      },
    );
  });
  it("reads integer dates as milliseconds or seconds by magnitude", () => {
    assert.deepEqual(
      mapColumnType(
        column("DATETIME"),
        stats({
          integers: 2,
          integerMin: 1700000000000n,
          integerMax: 1700000000001n,
        }),
      ),
      {
        pgType: "timestamptz",
        conversion: "epoch-ms",
        note: "declared DATETIME, stores integers up to 1700000000001: read as unix milliseconds",
      },
    );
    assert.deepEqual(
      mapColumnType(column("TIMESTAMP"), stats({ integers: 2, integerMin: 0n, integerMax: 1700000000n })),
      {
        pgType: "timestamptz",
        conversion: "epoch-s",
        note: "declared TIMESTAMP, stores integers up to 1700000000: read as unix seconds",
      },
    );
  });
  it("maps ISO text dates to date, timestamp or timestamptz", () => {
    assert.deepEqual(
      mapColumnType(column("DATE"), stats({ texts: 3, textDates: 3, textDateTimes: 0, textZoned: 0 })),
      {
        pgType: "date",
        conversion: "date",
      },
    );
    assert.deepEqual(
      mapColumnType(column("DATETIME"), stats({ texts: 3, textDates: 0, textDateTimes: 3, textZoned: 0 })),
      {
        pgType: "timestamp",
        conversion: "timestamp",
      },
    );
    assert.deepEqual(
      mapColumnType(column("DATETIME"), stats({ texts: 3, textDates: 0, textDateTimes: 3, textZoned: 1 })),
      {
        pgType: "timestamptz",
        conversion: "timestamptz",
        note: "declared DATETIME, 1 value(s) carry a zone: timestamptz, values without zone read as UTC",
      },
    );
    assert.deepEqual(
      mapColumnType(column("DATE"), stats({ texts: 3, textDates: 2, textDateTimes: 0, textZoned: 0 })),
      {
        pgType: "date",
        conversion: "date",
        note: "declared DATE; 1 value(s) do not parse as dates and are bad values (--on-bad-value)",
      },
    );
  });
  it("keeps text when most date values do not parse", () => {
    const decision = mapColumnType(
      column("DATE"),
      stats({
        texts: 3,
        textDates: 1,
        textDateTimes: 0,
        textZoned: 0,
        textMaxLength: 9,
      }),
    );
    assert.equal(decision.pgType, "text");
    assert.match(decision.note ?? "", /not all dates/);
  });
  it("maps JSON to jsonb only when every value parses", () => {
    assert.deepEqual(mapColumnType(column("JSON"), stats({ texts: 2, textJson: 2 })), {
      pgType: "jsonb",
      conversion: "jsonb",
    });
    const decision = mapColumnType(column("JSON"), stats({ texts: 2, textJson: 1, textMaxLength: 4 }));
    assert.equal(decision.pgType, "text");
    assert.match(decision.note ?? "", /not every value is valid JSON/);
  });
  it("maps mixed storage classes losslessly and says so", () => {
    assert.deepEqual(
      mapColumnType(
        column("INTEGER"),
        stats({
          integers: 1,
          texts: 1,
          integerMin: 1n,
          integerMax: 1n,
          textMaxLength: 3,
        }),
      ),
      {
        pgType: "text",
        conversion: "text",
        note: "declared INTEGER but stores 1 integer, 1 text: text, numbers kept as their exact decimal text",
      },
    );
    assert.deepEqual(
      mapColumnType(column("INTEGER"), stats({ integers: 1, reals: 1, integerMin: 1n, integerMax: 1n })),
      {
        pgType: "double precision",
        conversion: "real",
        note: "declared INTEGER but stores 1 integer, 1 real: double precision",
      },
    );
    assert.deepEqual(
      mapColumnType(
        column(""),
        stats({
          integers: 1,
          reals: 1,
          integerMin: 9007199254740993n,
          integerMax: 9007199254740993n,
        }),
      ),
      {
        pgType: "numeric",
        conversion: "numeric",
        note: "declared (no type) but stores 1 integer, 1 real: numeric (integers beyond 2^53 with reals)",
      },
    );
  });
});
