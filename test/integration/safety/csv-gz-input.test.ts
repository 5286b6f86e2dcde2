import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir } from "../import/sqlite-fixtures.ts";

const db = useTestDatabase("csvgz");
const dir = fixtureDir();

describe("CSV empty fields and broken input", () => {
  const csv = join(dir, "empties.csv");
  writeFileSync(csv, 'id,name,note\n1,,""\n2,"",\n3,x,y\n');

  for (const [flag, expected] of [
    [
      [],
      [
        { id: "1", name: null, note: "" },
        { id: "2", name: "", note: null },
        { id: "3", name: "x", note: "y" },
      ],
    ],
    [
      ["--empty-as", "empty"],
      [
        { id: "1", name: "", note: "" },
        { id: "2", name: "", note: "" },
        { id: "3", name: "x", note: "y" },
      ],
    ],
  ] as const) {
    it(`unquoted empty is ${flag.length ? "an empty string" : "NULL"} ${flag.join(" ")}, a quoted "" an empty string`, async () => {
      const table = flag.length ? "empties_empty" : "empties_null";
      const result = await runCli(
        ["import", `csv:${csv}`, "--to", db().url, "--table", table, "--key", "/id", ...flag],
        { cwd: dir },
      );
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const { rows } = await db().pool.query(`select id::text, name, note from ${table} order by id`);
      assert.deepEqual(rows, expected);
    });
  }

  it("--empty-as takes null or empty only", async () => {
    const result = await runCli(["import", `csv:${csv}`, "--to", db().url, "--empty-as", "blank"], {
      cwd: dir,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--empty-as must be one of null, empty, not "blank"/);
  });

  it("a CSV parse error is reported with file:line before a --key that found nothing", async () => {
    const bad = join(dir, "broken.csv");
    writeFileSync(bad, 'sku,name\n"a1,first\nb2,second\n');
    const result = await runCli(["import", `csv:${bad}`, "--to", db().url, "--key", "/sku"], { cwd: dir });
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /^pgshift: broken\.csv:\d+: malformed CSV in broken\.csv after line \d+: .*\(and then --key \/sku: no record read has that field\)/m,
    );
  });

  it("a .csv.gz is inflated; a truncated one names the file and the byte offset", async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => `${i},name ${i}`).join("\n");
    const whole = gzipSync(Buffer.from(`id,name\n${rows}\n`));
    const good = join(dir, "people.csv.gz");
    writeFileSync(good, whole);
    const imported = await runCli(["import", `csv:${good}`, "--to", db().url, "--key", "/id"], { cwd: dir });
    assert.equal(imported.code, 0, imported.stderr + imported.stdout);
    const { rows: counted } = await db().pool.query(
      "select count(*)::int as n, max(name) as last from people",
    );
    assert.deepEqual(counted, [{ n: 2000, last: "name 999" }]);
    const cut = join(dir, "cut.csv.gz");
    writeFileSync(cut, whole.subarray(0, whole.length - 50));
    const result = await runCli(["--json", "import", `csv:${cut}`, "--to", db().url], { cwd: dir });
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`cut\\.csv\\.gz: corrupt gzip data at bytes? \\d+(-\\d+)? of ${whole.length - 50} \\(`),
    );
    assert.equal(JSON.parse(result.stdout).error, "corrupt_gzip");
  });

  it("a corrupt or truncated .gz names the file and the byte offset", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({ id: i, pad: `${i}`.repeat(20) }),
    ).join("\n");
    const whole = gzipSync(Buffer.from(`${lines}\n`));
    const truncated = join(dir, "truncated.ndjson.gz");
    writeFileSync(truncated, whole.subarray(0, whole.length - 100));
    const flipped = Buffer.from(whole);
    flipped[Math.floor(whole.length / 2)]! ^= 0xff;
    const corrupt = join(dir, "corrupt.ndjson.gz");
    writeFileSync(corrupt, flipped);
    for (const [file, size] of [
      [truncated, whole.length - 100],
      [corrupt, whole.length],
    ] as const) {
      assert.equal(readFileSync(file).length, size);
      const name = file.slice(dir.length + 1);
      const result = await runCli(["--json", "import", `ndjson:${file}`, "--to", db().url], { cwd: dir });
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`${name.replace(/\./g, "\\.")}: corrupt gzip data at bytes? \\d+(-\\d+)? of ${size} \\(`),
      );
      const payload = JSON.parse(result.stdout);
      assert.equal(payload.error, "corrupt_gzip");
      assert.ok(payload.offset >= 0 && payload.offset <= size, String(payload.offset));
    }
  });
});
