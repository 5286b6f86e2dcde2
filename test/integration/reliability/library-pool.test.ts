import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { ConnectionLostError } from "../../../src/pg/errors.ts";
import { serverUrl, useTestDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "../verify/fixture.ts";
import { terminateSessions } from "./fault-helpers.ts";

/**
 * Library use with the application's own pg.Pool (no listeners of pgshift's): a terminated backend
 * during an import is an error of the call, never an unhandled 'error' event that kills the app.
 */
describe("an application's own Pool", () => {
  const db = useTestDatabase("rlib");
  let dir: string;
  let fixture: Fixture;
  let pool: pg.Pool;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pgshift-libpool-"));
    fixture = makeFixture({ items: 20_000 });
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) lines.push(JSON.stringify({ id: i, text: "z".repeat(80) }));
    writeFileSync(join(dir, "a.ndjson"), `${lines.join("\n")}\n`);
    pool = new pg.Pool({ connectionString: db().url, max: 6 });
    // what an application does for its idle clients; checked-out ones are pgshift's business
    pool.on("error", () => undefined);
  });

  after(async () => {
    await pool?.end().catch(() => undefined);
    fixture?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Terminates the database's sessions as soon as one of them runs a COPY. */
  async function terminateDuringCopy(done: () => boolean): Promise<number> {
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    try {
      while (!done()) {
        const { rows } = await admin.query(
          "select count(*)::int as n from pg_stat_activity where datname = $1 and query ilike 'copy %' and state = 'active'",
          [db().name],
        );
        if (rows[0].n > 0) return terminateSessions(serverUrl(), db().name);
        await sleep(10);
      }
      return 0;
    } finally {
      await admin.end();
    }
  }

  it("document import: rejects with ConnectionLostError; no table and no staging table left", async () => {
    let finished = false;
    const importing = importDocuments({ pool, from: `ndjson:${join(dir, "a.ndjson")}`, key: "/id", jobs: 2 })
      .catch((error: unknown) => error)
      .finally(() => (finished = true));
    const terminated = await terminateDuringCopy(() => finished);
    const error = await importing;
    assert.ok(terminated > 0, "the COPY was seen and its sessions terminated");
    assert.ok(error instanceof ConnectionLostError, String(error));
    const { rows } = await pool.query("select count(*)::int as n from pg_tables where schemaname = 'public'");
    assert.equal(rows[0].n, 0);
  });

  it("SQLite import: the result carries connection_lost and the resume command", async () => {
    let finished = false;
    const importing = importSqlite({ path: fixture.path, pool, chunkRows: 2000, jobs: 2, verify: false })
      .catch((error: unknown) => error)
      .finally(() => (finished = true));
    // every session, again and again, so that the chunk retries do not get through either
    await terminateDuringCopy(() => finished);
    while (!finished) {
      await terminateSessions(serverUrl(), db().name);
      await sleep(5);
    }
    const result = (await importing) as { ok: boolean; error?: { code: string }; nextSteps: string[] };
    assert.equal(result.ok, false, JSON.stringify(result).slice(0, 500));
    assert.match(result.error!.code, /^connection_(lost|failed)$/);
    assert.ok(result.nextSteps.some((s) => s.includes("--resume")));
  });
});
