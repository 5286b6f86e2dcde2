import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "./fixture.ts";

/** `pgshift verify` and `pgshift verify-report` as a user runs them: exit codes, output, signed reports. */
const db = useTestDatabase("vcli");
let fixture: Fixture;
const HMAC = "a-shared-secret-of-some-length";

describe("pgshift verify and verify-report", () => {
  before(async () => {
    fixture = makeFixture({ items: 400 });
    const imported = await importSqlite({ path: fixture.path, pool: db().pool, verify: false, jobs: 2 });
    assert.equal(imported.ok, true, JSON.stringify(imported.error));
  });
  after(() => fixture?.cleanup());

  it("exits 0 with --json when identical, writes an HMAC-signed report that verify-report accepts", async () => {
    const report = join(fixture.dir, "hmac.json");
    const run = await runCli(
      [
        "verify",
        fixture.path,
        "--to",
        db().url,
        "--json",
        "--report",
        report,
        "--hmac-key-env",
        "VERIFY_KEY",
      ],
      { env: { VERIFY_KEY: HMAC } },
    );
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.identical, true);
    assert.equal(result.plan.from, "import-run");
    assert.equal(result.summary.sourceRows, 700);
    assert.equal(result.report, report);
    const saved = JSON.parse(readFileSync(report, "utf8"));
    assert.equal(saved.signature.algorithm, "hmac-sha256");
    assert.equal(saved.source.path, fixture.path);
    assert.match(saved.source.sha256, /^[0-9a-f]{64}$/);
    assert.equal(saved.target.database, db().name);
    assert.ok(!JSON.stringify(saved).includes(HMAC));

    const check = await runCli(["verify-report", report, "--hmac-key-env", "VERIFY_KEY"], {
      env: { VERIFY_KEY: HMAC },
    });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /valid hmac-sha256 signature/);

    const wrongKey = await runCli(["verify-report", report, "--hmac-key-env", "VERIFY_KEY"], {
      env: { VERIFY_KEY: `${HMAC}-other` },
    });
    assert.equal(wrongKey.code, 3);

    saved.tables[0].targetRows += 1;
    writeFileSync(report, JSON.stringify(saved, null, 2));
    const tampered = await runCli(["verify-report", report, "--hmac-key-env", "VERIFY_KEY", "--json"], {
      env: { VERIFY_KEY: HMAC },
    });
    assert.equal(tampered.code, 3);
    assert.equal(JSON.parse(tampered.stdout).valid, false);
  });

  it("signs with Ed25519; only the matching public key validates, and an unsigned report is invalid", async () => {
    const keys = generateKeyPairSync("ed25519");
    const privatePath = join(fixture.dir, "sign.pem");
    const publicPath = join(fixture.dir, "sign.pub.pem");
    const otherPath = join(fixture.dir, "other.pub.pem");
    writeFileSync(privatePath, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(publicPath, keys.publicKey.export({ type: "spki", format: "pem" }));
    writeFileSync(
      otherPath,
      generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }),
    );
    const report = join(fixture.dir, "ed.json");
    const run = await runCli([
      "verify",
      fixture.path,
      "--to",
      db().url,
      "--report",
      report,
      "--sign-key",
      privatePath,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(readFileSync(report, "utf8")).signature.algorithm, "ed25519");
    assert.equal((await runCli(["verify-report", report, "--public-key", publicPath])).code, 0);
    assert.equal((await runCli(["verify-report", report, "--public-key", otherPath])).code, 3);

    const unsigned = join(fixture.dir, "unsigned.json");
    assert.equal((await runCli(["verify", fixture.path, "--to", db().url, "--report", unsigned])).code, 0);
    const check = await runCli(["verify-report", unsigned, "--public-key", publicPath]);
    assert.equal(check.code, 3);
    assert.match(check.stdout, /not signed/);
  });

  it("exits 3 on a mismatch and names table, key and column on the terminal", async () => {
    await db().pool.query("update items set price = price + 1 where id = 34");
    try {
      const run = await runCli([
        "verify",
        fixture.path,
        "--to",
        db().url,
        "--report",
        join(fixture.dir, "bad.json"),
      ]);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stdout, /items\s+400\s+400\s+\d+\s+mismatch\s+1 changed/);
      assert.match(run.stdout, /changed {2}id=34\n\s+price: source "314.5", target "315.5"/);
      assert.match(run.stdout, /MISMATCH: 1 of 3 table\(s\) differ/);
    } finally {
      await db().pool.query("update items set price = price - 1 where id = 34");
    }
  });

  it("samples with --sample and rejects bad flags with exit 2", async () => {
    const run = await runCli([
      "verify",
      fixture.path,
      "--to",
      db().url,
      "--sample",
      "50%",
      "--json",
      "--report",
      join(fixture.dir, "s.json"),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.sample, 0.5);
    const items = result.tables.find((t: { table: string }) => t.table === "items");
    assert.equal(items.sample.sourceRows, items.sample.targetRows);
    assert.ok(items.sample.sourceRows > 100 && items.sample.sourceRows < 300);
    assert.equal((await runCli(["verify", fixture.path, "--to", db().url, "--sample", "2"])).code, 2);
    assert.equal((await runCli(["verify", "json:somewhere", "--to", db().url])).code, 2);
    assert.equal((await runCli(["verify-report", join(fixture.dir, "s.json")])).code, 2);
  });

  it("plans again from the source when the target holds no import run", async () => {
    await db().pool.query("drop schema pgshift cascade");
    const run = await runCli([
      "verify",
      fixture.path,
      "--to",
      db().url,
      "--json",
      "--report",
      join(fixture.dir, "r.json"),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.plan.from, "rebuilt");
    assert.equal(result.identical, true);
    assert.equal(result.summary.targetRows, 700);
    const snake = await runCli([
      "verify",
      fixture.path,
      "--to",
      db().url,
      "--naming",
      "snake",
      "--schema",
      "elsewhere",
    ]);
    assert.equal(snake.code, 3, "tables missing from a schema that was never imported into");
    assert.match(snake.stdout, /does not exist in the target/);
  });
});
