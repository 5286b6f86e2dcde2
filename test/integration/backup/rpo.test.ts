import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import pg from "pg";
import {
  restorePointInTime,
  runPhysicalBackup,
  setupArchiving,
  walDirOf,
} from "../../../src/backup/index.ts";
import { findPgBinaries } from "../../../src/local/binaries.ts";
import { destroyLocalInstance, localInstanceUrl, stopLocalInstance } from "../../../src/local/instance.ts";
import { readArchiverStatus } from "../../../src/serve/wal-status.ts";

// The instances backed up here run the server major of the installed backup tools (Debian's).
const BACKUP_BINARIES = findPgBinaries();
const baseDir = mkdtempSync(join(tmpdir(), "pgshift-rpo-"));
chmodSync(baseDir, 0o755);
const repository = join(baseDir, "repo");
const prod = { name: "prod", baseDir, binaries: BACKUP_BINARIES };
const restored = { name: "restored", baseDir, binaries: BACKUP_BINARIES };
/** Short enough for CI; pgshift's default is 60 s, which bounds the RPO at 60 s the same way. */
const ARCHIVE_TIMEOUT_S = 20;

after(async () => {
  for (const o of [restored, prod]) await destroyLocalInstance(o).catch(() => undefined);
});

test("RPO: a commit on an otherwise idle server is archived within archive_timeout and survives the server's loss", async (t) => {
  await setupArchiving(prod, { repository, archiveTimeoutSeconds: ARCHIVE_TIMEOUT_S });
  const url = localInstanceUrl(prod);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    await pool.query("create table orders (id int primary key, note text)");
    await runPhysicalBackup({ url, repository, label: "base" });
    // one commit, then nothing: no pg_switch_wal, only archive_timeout moves it to the repository
    const { rows } = await pool.query(
      "insert into orders values (1, 'the last order before the loss') returning pg_walfile_name(pg_current_wal_insert_lsn()) as seg",
    );
    const committed = performance.now();
    const segment = join(walDirOf(repository), rows[0].seg as string);
    let lagSeen = 0;
    while (!existsSync(segment) && performance.now() - committed < 3 * ARCHIVE_TIMEOUT_S * 1000) {
      lagSeen = Math.max(lagSeen, (await readArchiverStatus(pool)).lagSeconds);
      await sleep(200);
    }
    const exposedS = (performance.now() - committed) / 1000;
    assert.ok(existsSync(segment), `segment ${rows[0].seg} not archived after ${exposedS.toFixed(1)} s`);
    // the window in which this commit existed only on the server: archive_timeout plus the archiver's copy
    assert.ok(
      exposedS <= ARCHIVE_TIMEOUT_S + 5,
      `archived ${exposedS.toFixed(1)} s after the commit (archive_timeout ${ARCHIVE_TIMEOUT_S} s)`,
    );
    assert.ok(lagSeen <= ARCHIVE_TIMEOUT_S + 5, `archiver lag ${lagSeen} s`);
    t.diagnostic(
      `commit archived ${exposedS.toFixed(1)} s after it committed; archiver lag seen ${lagSeen.toFixed(1)} s`,
    );
  } finally {
    await pool.end();
  }
  // the server is lost; the latest restore from the repository has the commit
  await stopLocalInstance(prod);
  const password = decodeURIComponent(new URL(url).password);
  const result = await restorePointInTime({ repository, into: restored, superuserPassword: password });
  const client = new pg.Client({ connectionString: localInstanceUrl(restored) });
  await client.connect();
  try {
    const { rows } = await client.query("select id, note from orders");
    assert.deepEqual(rows, [{ id: 1, note: "the last order before the loss" }]);
  } finally {
    await client.end();
  }
  assert.ok(result.rtoMs > 0);
});
