import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { withClient } from "../../../src/pg/pool.ts";
import { canonicalConverter, type CanonicalKind, recordText } from "../../../src/verify/canonical.ts";
import { canonicalSql, inCanonicalSnapshot } from "../../../src/verify/target-side.ts";
import { useTestDatabase } from "../../helpers/database.ts";

/**
 * The canonical forms computed in TypeScript (source side) must equal what PostgreSQL computes in SQL
 * (target side) for the same value, or verification would report false mismatches. Values go in as
 * an importer sends them (text), and come back through the canonical SQL expressions.
 */
const db = useTestDatabase("vcanon");

let seed = 12345;
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}

function randomDouble(): number {
  const bits = new DataView(new ArrayBuffer(8));
  bits.setUint32(0, Math.floor(random() * 2 ** 32));
  bits.setUint32(4, Math.floor(random() * 2 ** 32));
  const value = bits.getFloat64(0);
  return Number.isFinite(value) ? value : random() * 1e6;
}

async function roundTrip(
  pgType: string,
  kind: CanonicalKind,
  inputs: (string | null)[],
  sourceValues: unknown[],
) {
  const converter = canonicalConverter(kind);
  await withClient(db().pool, async (client) => {
    await client.query(`drop table if exists probe; create table probe (i int, v ${pgType})`);
    await client.query(
      `insert into probe select ordinality, v::${pgType} from unnest($1::text[]) with ordinality as u(v, ordinality)`,
      [inputs],
    );
    const rows = await inCanonicalSnapshot(client, async () => {
      const { rows } = await client.query(
        `select i, ${canonicalSql(kind, "v")} as c, md5(row(${canonicalSql(kind, "v")})::text) as h from probe order by i`,
      );
      return rows as { i: number; c: string | null; h: string }[];
    });
    assert.equal(rows.length, inputs.length);
    for (const row of rows) {
      const source = sourceValues[row.i - 1];
      const canonical = converter(source as never);
      assert.equal(canonical, row.c, `${pgType} value ${String(source)} (input ${inputs[row.i - 1]})`);
    }
    const { createHash } = await import("node:crypto");
    for (const row of rows) {
      assert.equal(
        createHash("md5")
          .update(recordText([row.c]))
          .digest("hex"),
        row.h,
      );
    }
  });
}

describe("canonical forms agree with PostgreSQL", () => {
  it("double precision: 3000 random bit patterns and edge values", async () => {
    const values: number[] = [
      0,
      -0,
      0.1,
      1e15,
      1e-5,
      1e21,
      5e-324,
      Number.MAX_VALUE,
      Number.NaN,
      Infinity,
      -Infinity,
    ];
    for (let i = 0; i < 3000; i++) values.push(randomDouble());
    for (let i = 0; i < 500; i++) values.push(Math.round(random() * 1e6) / 100);
    const texts = values.map((v) =>
      Number.isNaN(v)
        ? "NaN"
        : v === Infinity
          ? "Infinity"
          : v === -Infinity
            ? "-Infinity"
            : Object.is(v, -0)
              ? "-0"
              : String(v),
    );
    await roundTrip("double precision", "double", texts, values);
  });

  it("real: 1000 random values", async () => {
    const values: number[] = [0.1, 1234567, 16777217, 3.4e38, 1e-40];
    for (let i = 0; i < 1000; i++) values.push((random() - 0.5) * 10 ** Math.floor(random() * 20 - 10));
    await roundTrip("real", "real", values.map(String), values);
  });

  it("numeric: scales, exponents and huge values", async () => {
    const texts = [
      "1.50",
      "0",
      "-0.000",
      "1e3",
      "123456789012345678901234567890.1234500",
      "-7.25",
      "0.000001",
      "NaN",
    ];
    for (let i = 0; i < 500; i++)
      texts.push(((random() - 0.5) * 10 ** Math.floor(random() * 30)).toFixed(Math.floor(random() * 8)));
    await roundTrip("numeric", "numeric", texts, texts);
    const doubles = [0.1, 1e21, 1.5e-7, 123.456, -2.5];
    await roundTrip("numeric", "numeric", doubles.map(String), doubles);
  });

  it("timestamps, timestamptz and dates in many forms", async () => {
    const texts = [
      "2024-01-02 03:04:05",
      "2024-01-02T03:04:05.123456",
      "2024-01-02T03:04:05.1234565",
      "1999-12-31 23:59:59.999999",
      "2024-02-29T00:00",
      "1970-01-01 00:00:00.000001",
      "0001-01-01 00:00:00",
      "9999-12-31 23:59:59",
    ];
    for (let i = 0; i < 300; i++) {
      const ms = Math.floor((random() - 0.3) * 4e12);
      const micros = Math.floor(random() * 1000);
      texts.push(`${new Date(ms).toISOString().replace("Z", "")}${String(micros).padStart(3, "0")}`);
    }
    await roundTrip("timestamp", "timestamp", texts, texts);
    const zoned = [
      ...texts.slice(0, 50),
      "2024-01-02 03:04:05+02",
      "2024-01-02T03:04:05.5-01:30",
      "2024-06-01T12:00:00Z",
    ];
    await roundTrip("timestamptz", "timestamptz", zoned, zoned);
    const dates = ["2024-01-02", "0001-01-01", "2000-02-29", "1900-03-01"];
    await roundTrip("date", "date", dates, dates);
  });

  it("text, bytea, boolean, uuid and integers", async () => {
    const texts = [
      "",
      "plain",
      "with space",
      'quote"s',
      "back\\slash",
      "(paren)",
      "comma,",
      "tab\tnew\nline",
      "é 😀 ∑",
      " lead",
    ];
    await roundTrip("text", "text", texts, texts);
    const blobs = [Buffer.from([]), Buffer.from([0, 1, 2, 255]), Buffer.from("hello")];
    await roundTrip(
      "bytea",
      "bytea",
      blobs.map((b) => `\\x${b.toString("hex")}`),
      blobs,
    );
    await roundTrip("boolean", "boolean", ["true", "false", null], [1n, 0n, null]);
    await roundTrip(
      "uuid",
      "uuid",
      ["A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"],
      ["A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"],
    );
    const ints = ["0", "-1", "9223372036854775807", "-9223372036854775808", "42"];
    await roundTrip("bigint", "integer", ints, ints.map(BigInt));
  });

  it("jsonb: key order, duplicates, numbers and escapes", async () => {
    const docs = [
      '{"b":1,"aa":2,"a":{"z":1.50,"y":1e2,"x":-0.0}}',
      '{"é":1,"z":2,"aa":3,"ab":[],"A":{}}',
      '{"a":1,"a":2}',
      '"\\u00e9\\u0001\\u007f\\ud83d\\ude00\\/ \\t"',
      "[1.0, 1.00e3, 12345678901234567890.10, -0, 1E-2, true, false, null]",
      '{"deep":{"deeper":{"deepest":[{"k":"v","kk":"vv"}]}}}',
      "  42  ",
      '"a\\nb\\"c\\\\"',
    ];
    await roundTrip("jsonb", "jsonb", docs, docs);
  });
});

describe("floats near ties agree with PostgreSQL's Ryu output", () => {
  it("doubles of 2^53 and above, including exact decimal midpoints", async () => {
    const values: number[] = [109819227628961800, 2 ** 53, 2 ** 60, 2 ** 63, 1e17, 1e300];
    for (let i = 0; i < 3000; i++)
      values.push(Math.floor(random() * 2 ** 20) * 2 ** Math.floor(53 + random() * 20));
    for (let i = 0; i < 2000; i++) values.push(random() * 10 ** (16 + Math.floor(random() * 10)));
    await roundTrip("double precision", "double", values.map(String), values);
  });
  it("reals", async () => {
    const values: number[] = [447994.1129684448];
    for (let i = 0; i < 3000; i++) values.push((random() - 0.5) * 10 ** Math.floor(random() * 60 - 30));
    await roundTrip("real", "real", values.map(String), values);
  });
});
