import assert from "node:assert/strict";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { peakGrowth, tempDir } from "./fixtures.ts";

const db = useTestDatabase("docs_big");

test("a 200 MB single JSON file (envelope) is streamed with bounded memory; a bad record in it is quarantined", async (t) => {
  const dir = await tempDir();
  const path = join(dir, "events.json");
  const out = createWriteStream(path);
  out.write('{"meta":{"source":"generated"},"results":[\n');
  let bytes = 0;
  let count = 0;
  const pad = "x".repeat(300);
  while (bytes < 200 * 1024 * 1024) {
    const record =
      count === 1234
        ? '{"id":"E1234","note":"a\\u0000b"}'
        : JSON.stringify({
            id: `E${count}`,
            n: count,
            tags: ["a", count % 7],
            body: { text: pad, at: "2024-01-01" },
          });
    const piece = count === 0 ? record : `,\n${record}`;
    bytes += piece.length;
    count++;
    if (!out.write(piece)) await once(out, "drain");
  }
  out.end("\n]}\n");
  await once(out, "finish");
  assert.ok((await stat(path)).size > 200 * 1024 * 1024);

  const { value: result, growthMb } = await peakGrowth(() =>
    importDocuments({
      pool: db().pool,
      from: `json:${path}`,
      records: "/results",
      key: "/id",
      onBadValue: "quarantine",
    }),
  );
  t.diagnostic(
    `${count} records, ${result.durationMs} ms, ${result.recordsPerSecond} records/s, rss +${growthMb} MB`,
  );
  assert.equal(result.recordsRead, count);
  assert.equal(result.quarantined, 1);
  assert.equal(result.recordsLoaded, count - 1);
  assert.equal(result.problems[0]!.location, "events.json:/results/1234");
  // whole-file parsing would hold the 200 MB text and its objects (well over 1 GB)
  assert.ok(growthMb < 400, `memory grew by ${growthMb} MB`);
  const { rows } = await db().pool.query(
    "select count(*)::int as n, max((doc->>'n')::int) as top from events",
  );
  assert.deepEqual(rows[0], { n: count - 1, top: count - 1 });
  await rm(dir, { recursive: true, force: true });
});
