import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { sealAll } from "./seal-all.ts";

const db = useTestDatabase("audcli");
const dir = mkdtempSync(join(tmpdir(), "pgshift-audit-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("pgshift audit: enable, log, sign, anchor, verify ok, then verify exit 3 naming the tampered row", async () => {
  const { pool, url } = db();
  const to = ["--to", url];
  await pool.query("create table public.doses (id int primary key, mg int)");
  const enabled = await runCli(["audit", "enable", "--tables", "doses", "--require-reason", ...to]);
  assert.equal(enabled.code, 0, enabled.stderr);
  assert.match(enabled.stdout, /public\.doses\s+id\s+yes/);

  await pool.query("insert into doses values (1, 5)");
  await assert.rejects(pool.query("update doses set mg = 6"), /needs a reason/);
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("set local pgshift.actor = 'nurse-7'");
    await client.query("set local pgshift.reason = 'prescription changed'");
    await client.query("update doses set mg = 6 where id = 1");
    await client.query("commit");
  } finally {
    client.release();
  }

  const log = await runCli(["audit", "log", "--table", "doses", "--key", "1", ...to]);
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, /UPDATE \{"id":1\} by nurse-7 .*because "prescription changed"/);
  assert.match(log.stdout, /mg: 5 -> 6/);
  const updateId = /#(\d+) \S+ UPDATE/.exec(log.stdout)![1]!;

  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const keyFile = join(dir, "signer.pem");
  const publicFile = join(dir, "signer.pub.pem");
  writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(publicFile, publicKey.export({ type: "spki", format: "pem" }));
  const signed = await runCli([
    "audit",
    "sign",
    "--id",
    updateId,
    "--signer",
    "Dr. Q",
    "--meaning",
    "approval",
    "--sign-key",
    keyFile,
    ...to,
  ]);
  assert.equal(signed.code, 0, signed.stderr);
  const logSigned = await runCli(["audit", "log", "--table", "doses", "--key", "1", ...to]);
  assert.match(logSigned.stdout, /signed by Dr\. Q \(approval\)/);

  const anchorFile = join(dir, "anchor.json");
  const anchored = await runCli(["audit", "anchor", "--out", anchorFile, "--sign-key", keyFile, ...to]);
  assert.equal(anchored.code, 0, anchored.stderr);
  const anchor = JSON.parse(readFileSync(anchorFile, "utf8"));
  assert.equal(anchor.signature.algorithm, "ed25519");

  const ok = await runCli(["audit", "verify", "--anchor", anchorFile, "--public-key", publicFile, ...to]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^OK: \d+ sealed audit row/);

  await sealAll(pool);
  const status = await runCli(["audit", "status", "--json", ...to]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).unsealedRows, 0);

  await pool.query("update pgshift.audit_log set new_row = jsonb_set(new_row, '{mg}', '60') where id = $1", [
    updateId,
  ]);
  const bad = await runCli(["audit", "verify", "--json", ...to]);
  assert.equal(bad.code, 3);
  const result = JSON.parse(bad.stdout);
  assert.equal(result.ok, false);
  assert.equal(result.problems[0].kind, "changed");
  assert.equal(result.problems[0].auditId, updateId);

  const forged = JSON.parse(readFileSync(anchorFile, "utf8"));
  forged.seq = 1;
  writeFileSync(anchorFile, JSON.stringify(forged));
  const badAnchor = await runCli([
    "audit",
    "verify",
    "--anchor",
    anchorFile,
    "--public-key",
    publicFile,
    ...to,
  ]);
  assert.equal(badAnchor.code, 1);
  assert.match(badAnchor.stderr, /signature does not match/);
});
