import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { peakGrowth, tempDir } from "./fixtures.ts";

const db = useTestDatabase("docs_many");

test("a directory of 20,000 files is walked lazily and loads completely", async (t) => {
  const root = await tempDir();
  const files = 20_000;
  for (let d = 0; d < files / 1000; d++) {
    const sub = join(root, `part-${String(d).padStart(2, "0")}`);
    await mkdir(sub);
    await Promise.all(
      Array.from({ length: 1000 }, (_, f) => {
        const i = d * 1000 + f;
        return writeFile(
          join(sub, `${i}.json`),
          JSON.stringify({ results: [{ id: `A${i}` }, { id: `B${i}` }] }),
        );
      }),
    );
  }
  const { value: result, growthMb } = await peakGrowth(() =>
    importDocuments({
      pool: db().pool,
      from: `json:${root}`,
      records: "/results",
      key: "/id",
      table: "many_files",
    }),
  );
  t.diagnostic(
    `${files} files, ${result.durationMs} ms, ${Math.round(files / (result.durationMs / 1000))} files/s, rss +${growthMb} MB`,
  );
  assert.equal(result.files, files);
  assert.equal(result.recordsRead, files * 2);
  assert.equal(result.inserted, files * 2);
  assert.ok(growthMb < 300, `memory grew by ${growthMb} MB`);
  const { rows } = await db().pool.query(
    "select count(*)::int as n, count(distinct source_file)::int as f from many_files",
  );
  assert.deepEqual(rows[0], { n: files * 2, f: files });
  await rm(root, { recursive: true, force: true });
});
