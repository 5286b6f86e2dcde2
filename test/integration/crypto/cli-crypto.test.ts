import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, stderrText } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { tempDir, writeTemp } from "../documents/fixtures.ts";
import { keyMaterial, patients } from "./fixtures.ts";

const db = useTestDatabase("crypt_cli");

function assertNothingSecret(text: string, secrets: readonly string[], what: string): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `${what} shows ${secret}`);
}

test("pgshift keys new, import --encrypt --blind-index --integrity, verify --integrity, keys rotate, tamper: exit 3 naming the record", async () => {
  const cwd = await tempDir();
  const keys = join(cwd, "keys.json");
  const records = patients(10);
  const plaintext = records.flatMap((r) => [r.ssn as string, (r.patient as { name: string }).name]);
  const source = await writeTemp("people.ndjson", records.map((r) => JSON.stringify(r)).join("\n"));

  const created = await runCli(["keys", "new", keys], { cwd });
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /created .*keys\.json with key "k1" \(active\)/);
  assert.equal((await stat(keys)).mode & 0o777, 0o600);
  const k1Json = await readFile(keys, "utf8");

  const missing = await runCli(
    ["import", `ndjson:${source}`, "--to", db().url, "--key", "/id", "--encrypt", "/ssn"],
    { cwd, env: { PGSHIFT_KEYS: "" } },
  );
  assert.equal(missing.code, 2);
  assert.match(stderrText(missing.stderr), /need keys: pass --keys FILE or --keys env:VAR/);

  const imported = await runCli(
    [
      "import",
      `ndjson:${source}`,
      "--to",
      db().url,
      "--key",
      "/id",
      "--encrypt",
      "/ssn,/patient/name",
      "--blind-index",
      "/ssn",
      "--integrity",
      "--keys",
      keys,
    ],
    { cwd },
  );
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(
    imported.stdout,
    /encrypted: \/ssn, \/patient\/name under key "k1" \(blind index: \/ssn\); record MACs in record_mac/,
  );
  assert.match(imported.stdout, /integrity: intact \(10 record MACs and ciphertexts checked\)/);
  const reportPath = /report: (\S+)/.exec(imported.stdout)![1]!;
  const report = await readFile(reportPath, "utf8");
  for (const [what, text] of [
    ["import stdout", imported.stdout],
    ["import stderr", imported.stderr],
    ["import report", report],
  ] as const)
    assertNothingSecret(text, [...keyMaterial(k1Json), ...plaintext], what);

  // the key from an environment variable this time
  const intact = await runCli(
    ["verify", "--integrity", "--table", "people", "--to", db().url, "--keys", "env:MY_KEYS"],
    {
      cwd,
      env: { MY_KEYS: k1Json },
    },
  );
  assert.equal(intact.code, 0, intact.stderr);
  assert.match(
    intact.stdout,
    /intact: 10 record\(s\) of public\.people checked \(record MACs, encrypted \/ssn, \/patient\/name\)/,
  );

  const added = await runCli(["keys", "new", keys], { cwd });
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /added key "k2" .* made it active/);
  const bothJson = await readFile(keys, "utf8");
  const rotated = await runCli(
    ["keys", "rotate", "--table", "people", "--to", db().url, "--keys", keys, "--batch-size", "4"],
    {
      cwd,
    },
  );
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, /rotated 10 row\(s\) of public\.people to key "k2" in 3 batch\(es\)/);
  assertNothingSecret(rotated.stdout + rotated.stderr, keyMaterial(bothJson), "rotate output");
  const { rows } = await db().pool.query(
    "select count(*)::int as n from people where doc->'ssn'->>'kid' = 'k1' or doc->'patient'->'name'->>'kid' = 'k1' or record_mac like 'k1:%'",
  );
  assert.equal(rows[0].n, 0);

  await db().pool.query(`update people set doc = jsonb_set(doc, '{city}', '"Elsewhere"') where id = 'P006'`);
  await db().pool.query(
    `update people set doc = jsonb_set(doc, '{patient,name,ct}', to_jsonb(overlay(doc->'patient'->'name'->>'ct' placing (case when left(doc->'patient'->'name'->>'ct', 1) = 'A' then 'B' else 'A' end) from 1 for 1))) where id = 'P002'`,
  );
  const tampered = await runCli(
    ["verify", "--integrity", "--table", "people", "--to", db().url, "--keys", keys],
    { cwd },
  );
  assert.equal(tampered.code, 3, tampered.stderr);
  assert.match(tampered.stdout, /TAMPERED: 2 of 10 record\(s\) of public\.people do not check:/);
  assert.match(tampered.stdout, /^ {2}P002: mac_mismatch$/m);
  assert.match(tampered.stdout, /^ {2}P002: decrypt_failed at \/patient\/name$/m);
  assert.match(tampered.stdout, /^ {2}P006: mac_mismatch$/m);
  assert.doesNotMatch(tampered.stdout, /P00[013-57-9]:/);

  const json = await runCli(
    ["verify", "--integrity", "--table", "people", "--to", db().url, "--keys", keys, "--json"],
    { cwd },
  );
  assert.equal(json.code, 3);
  const result = JSON.parse(json.stdout);
  assert.equal(result.status, "tampered");
  assert.deepEqual(
    result.problems.map((p: { key: string[] }) => p.key[0]),
    ["P002", "P002", "P006"],
  );
  assertNothingSecret(json.stdout, keyMaterial(bothJson), "verify --json");

  const noTable = await runCli(["verify", "--integrity", "--to", db().url, "--keys", keys], { cwd });
  assert.equal(noTable.code, 2);
  assert.match(stderrText(noTable.stderr), /verify --integrity needs --table NAME/);
});
