import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

/** `pgshift import ndjson:...` verifies by itself; `pgshift verify ndjson:...` exits 0 / 3 / 1 as users see it. */
const db = useTestDatabase("vdcli");
let dir: string;
let source: string;

describe("pgshift verify for document imports", () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pgshift-vdcli-"));
    source = join(dir, "recalls.ndjson");
    const lines = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ recall: `R-${i + 1}`, firm: { name: `Firm ${i % 17}`, city: "Zürich" }, n: i }),
    );
    lines.push('{"firm": {"name": "no key"}}');
    writeFileSync(source, `${lines.join("\n")}\n`);
    writeFileSync(join(dir, "typed.csv"), "id,name\n1,a\n2,b\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("verifies at the end of the import (identical), and skips with --no-verify", async () => {
    const report = join(dir, "import.json");
    const run = await runCli(
      [
        "import",
        `ndjson:${source}`,
        "--to",
        db().url,
        "--key",
        "/recall",
        "--on-bad-value",
        "quarantine",
        "--report",
        report,
      ],
      { cwd: dir },
    );
    // one quarantined record: exit 1 as before, but the documents that loaded are verified identical
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /verified: identical \(300 documents.*1 quarantined left out\)/);
    const saved = JSON.parse(readFileSync(report, "utf8"));
    assert.equal(saved.verification.status, "identical");
    assert.equal(saved.verification.tables[0].quarantinedRows, 1);
    assert.equal(saved.verification.plan.runId, saved.runId);

    const again = await runCli(
      [
        "import",
        `ndjson:${source}`,
        "--to",
        db().url,
        "--key",
        "/recall",
        "--mode",
        "upsert",
        "--no-verify",
        "--json",
      ],
      { cwd: dir, env: {} },
    );
    assert.equal(JSON.parse(again.stdout).verification, undefined);
  });

  it("exits 0 when identical, 3 naming the key after tampering, with a signed report", async () => {
    const args = ["verify", `ndjson:${source}`, "--to", db().url, "--key", "/recall"];
    const ok = await runCli([...args, "--json", "--report", join(dir, "ok.json")], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    const result = JSON.parse(ok.stdout);
    assert.equal(result.identical, true);
    assert.equal(result.summary.sourceRows, 300);
    assert.equal(result.summary.quarantinedRows, 1);

    await db().pool.query(
      `update recalls set doc = jsonb_set(doc, '{firm,city}', '"Zurich"') where recall = 'R-17'`,
    );
    await db().pool.query(`delete from recalls where recall = 'R-200'`);
    const report = join(dir, "bad.json");
    const bad = await runCli([...args, "--report", report, "--hmac-key-env", "K"], {
      cwd: dir,
      env: { K: "a-secret-for-the-report" },
    });
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stdout, /missing\s+recall=R-200/);
    assert.match(bad.stdout, /changed\s+recall=R-17/);
    assert.match(bad.stdout, /doc\/firm\/city: source "\\"Zürich\\"", target "\\"Zurich\\""/);
    const check = await runCli(["verify-report", report, "--hmac-key-env", "K"], {
      env: { K: "a-secret-for-the-report" },
    });
    assert.equal(check.code, 0, check.stderr);

    // upsert re-imports R-200 but skips R-17, whose content hash did not change: its verification says so, exit 3
    const upsert = await runCli(
      [
        "import",
        `ndjson:${source}`,
        "--to",
        db().url,
        "--key",
        "/recall",
        "--mode",
        "upsert",
        "--on-bad-value",
        "quarantine",
        "--json",
      ],
      { cwd: dir },
    );
    assert.equal(upsert.code, 3, upsert.stderr);
    const imported = JSON.parse(upsert.stdout);
    assert.equal(imported.inserted, 1);
    assert.equal(imported.verification.status, "mismatch");
    assert.deepEqual(
      imported.verification.tables[0].changed.map((c: { key: unknown }) => c.key),
      [{ recall: "R-17" }],
    );
    assert.equal(imported.verification.tables[0].missingRows, 0);
  });

  it("exits 1 for a typed CSV table, which it checks by counts only", async () => {
    const run = await runCli(["verify", `csv:${join(dir, "typed.csv")}`, "--to", db().url], { cwd: dir });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /typed table: checked by counts only/);
    assert.doesNotMatch(run.stdout, /identical:/);
  });
});
