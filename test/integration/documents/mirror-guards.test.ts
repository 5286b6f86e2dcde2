import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import { EmptySourceError, importDocuments } from "../../../src/documents/import-documents.ts";
import { PgshiftError } from "../../../src/errors.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { tempDir, writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_mirror_guards");

const ndjson = (ids: string[]) => ids.map((id) => `{"id":"${id}","v":1}\n`).join("");

async function ids(table: string): Promise<string[]> {
  const { rows } = await db().pool.query(`select id from ${table} order by id`);
  return rows.map((r) => r.id as string);
}

async function seed(table: string, keys: string[]): Promise<string> {
  const path = await writeTemp(`${table}.ndjson`, ndjson(keys));
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id", mode: "upsert" });
  return path;
}

test("--mirror deletes nothing when a line was quarantined or the file is cut short, and says why", async () => {
  const path = await seed("broken", ["a", "b", "c", "d"]);
  // a broken line (it may be "b"), and a last line cut short (it was "d")
  await writeFile(path, `{"id":"a","v":1}\n{"id":"b","v":\n{"id":"c","v":1}\n{"id":"d","v`);
  for (const jobs of [1, 2]) {
    const result = await importDocuments({
      pool: db().pool,
      from: `ndjson:${path}`,
      key: "/id",
      mode: "upsert",
      mirror: true,
      onBadValue: "quarantine",
      jobs,
    });
    assert.equal(result.quarantined, 2);
    assert.equal(result.deleted, 0);
    assert.match(result.mirrorSkipped ?? "", /2 record\(s\) of the source were quarantined.*deleted no row/);
    assert.deepEqual(await ids("broken"), ["a", "b", "c", "d"]);
  }
  // a complete read mirrors (1 of 4 deleted: within the default 50 %)
  await writeFile(path, ndjson(["a", "b", "c"]));
  const clean = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    mode: "upsert",
    mirror: true,
  });
  assert.equal(clean.mirrorSkipped, undefined);
  assert.deepEqual(clean.deletedKeys, ["d"]);
  assert.deepEqual(await ids("broken"), ["a", "b", "c"]);
});

test("an empty source does not empty the table under --mirror or --mode replace unless --allow-empty", async () => {
  const path = await seed("emptied", ["a", "b"]);
  await writeFile(path, "");
  for (const options of [{ mode: "upsert" as const, mirror: true }, { mode: "replace" as const }]) {
    await assert.rejects(
      importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id", ...options }),
      (error: unknown) =>
        error instanceof EmptySourceError &&
        /no record to load.*2 row\(s\).*--allow-empty/.test(error.message),
    );
    assert.deepEqual(await ids("emptied"), ["a", "b"]);
  }
  const allowed = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    mode: "upsert",
    mirror: true,
    allowEmpty: true,
  });
  assert.equal(allowed.deleted, 2);
  assert.deepEqual(await ids("emptied"), []);
});

test("--max-delete: a mirror that would delete more than the share is refused with the count, nothing committed", async () => {
  const path = await seed("shrunk", ["a", "b", "c", "d", "e"]);
  await writeFile(path, ndjson(["a", "b", "new"]));
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id", mode: "upsert", mirror: true }),
    (error: unknown) =>
      error instanceof PgshiftError &&
      error.code === "mirror_delete_limit" &&
      /would delete 3 of the 5 row\(s\) of public\.shrunk \(60 %\), more than --max-delete 50 %/.test(
        error.message,
      ),
  );
  assert.deepEqual(await ids("shrunk"), ["a", "b", "c", "d", "e"]);
  const allowed = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    mode: "upsert",
    mirror: true,
    maxDelete: 0.6,
  });
  assert.deepEqual([allowed.inserted, allowed.deleted], [1, 3]);
  assert.deepEqual(await ids("shrunk"), ["a", "b", "new"]);
});

test("CLI: --max-delete and --allow-empty; a refused mirror exits 1 with the count", async () => {
  const path = await seed("cli_guard", ["a", "b", "c", "d"]);
  const cwd = await tempDir();
  await writeFile(path, ndjson(["a"]));
  const args = ["import", `ndjson:${path}`, "--to", db().url, "--key", "/id", "--mode", "upsert", "--mirror"];
  const refused = await runCli(args, { cwd });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /would delete 3 of the 4 row\(s\).*more than --max-delete 50 %/);
  assert.doesNotMatch(refused.stderr, /\n\s+at /);
  const allowed = await runCli([...args, "--max-delete", "75%", "--json"], { cwd });
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(JSON.parse(allowed.stdout).deleted, 3);
  await writeFile(path, "");
  const empty = await runCli(args, { cwd });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /no record to load.*--allow-empty/);
  const emptied = await runCli([...args, "--allow-empty", "--json"], { cwd });
  assert.equal(emptied.code, 0, emptied.stderr);
  assert.equal(JSON.parse(emptied.stdout).deleted, 1);
  const bad = await runCli([...args, "--max-delete", "150%"], { cwd });
  assert.equal(bad.code, 2);
});
