import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type pg from "pg";
import {
  AUDIT_OWNER_ROLE,
  auditPart,
  auditTriggerSql,
  installAudit,
  sealAudit,
  verifyAudit,
} from "../../../src/audit/index.ts";
import { destroyLocalInstance, localInstanceUrl, startLocalInstance } from "../../../src/local/instance.ts";
import { ensureInternalSchema } from "../../../src/pg/internal-schema.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { testBinaries } from "../../helpers/binaries.ts";
import { createTestDatabase } from "../../helpers/database.ts";
import { sealAll } from "./seal-all.ts";

interface Head {
  seq: number;
  horizon: string;
  floorId: number;
}

async function head(pool: pg.Pool): Promise<Head> {
  const { rows } = await pool.query("select seq, horizon::text, floor_id from pgshift.audit_head");
  return { seq: Number(rows[0].seq), horizon: rows[0].horizon, floorId: Number(rows[0].floor_id) };
}

async function sealRows(pool: pg.Pool): Promise<{ seq: string; auditId: string; hash: string }[]> {
  const { rows } = await pool.query(
    "select seq::text, audit_id::text as audit_id, encode(hash, 'hex') as hash from pgshift.audit_seal s order by s.seq",
  );
  return rows.map((r) => ({ seq: r.seq, auditId: r.audit_id, hash: r.hash }));
}

async function unsealedIds(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query(
    `select a.id::text from pgshift.audit_log a
      where not exists (select from pgshift.audit_seal s where s.audit_id = a.id) order by a.id`,
  );
  return rows.map((r) => r.id);
}

/**
 * A private server: the seal horizon is cluster-wide, so on the shared test server another test file's
 * long transaction could hold the floor back; here only this test's transactions count.
 */
async function privateServer(): Promise<{ pool: pg.Pool; drop(): Promise<void> }> {
  const instance = {
    name: `sealfloor-${process.pid}`,
    baseDir: join(tmpdir(), "pgshift-sealfloor"),
    ephemeral: true,
    binaries: testBinaries(),
  };
  await startLocalInstance(instance);
  const pool = createPool({ url: localInstanceUrl(instance), max: 8 });
  return {
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      await destroyLocalInstance(instance).catch(() => undefined);
      rmSync(instance.baseDir, { recursive: true, force: true });
    },
  };
}

/**
 * Seals until the floor reaches the last audit row: every id up to it sealed. The floor is the id
 * sequence's last value when a seal read it, so it passes max(id) when the last ids drawn belong to
 * a rolled-back transaction (their rows never existed); it never passes the sequence.
 */
async function sealUntilFloorAtEnd(pool: pg.Pool): Promise<Head> {
  for (let attempt = 0; attempt < 240; attempt++) {
    await sealAudit(pool);
    const now = await head(pool);
    const { rows } = await pool.query(
      `select coalesce(max(id), 0)::bigint as last,
              (select last_value from pgshift.audit_log_id_seq)::bigint as drawn
         from pgshift.audit_log`,
    );
    assert.ok(now.floorId <= Number(rows[0].drawn), `floor ${now.floorId} above the last id drawn`);
    if (now.floorId >= Number(rows[0].last)) return now;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error("the seal floor never reached the last audit id: a transaction is left open somewhere");
}

test("upgrading a sealed trail to the id-ordered sealer keeps its chain, and seals what was pending", async () => {
  const db = await createTestDatabase("audfloorup");
  try {
    const { pool } = db;
    // The audit part as it was before this step.
    await pool.query(
      `do $$ begin
         if not exists (select from pg_roles where rolname = '${AUDIT_OWNER_ROLE}') then create role ${AUDIT_OWNER_ROLE} nologin; end if;
       exception when duplicate_object or unique_violation then null; end $$`,
    );
    const previous = { ...auditPart, steps: auditPart.steps.slice(0, -1) };
    await ensureInternalSchema(pool, [previous]);
    await pool.query("create table public.items (id int primary key, label text)");
    const table = { schema: "public", name: "items", keyColumns: ["id"], requireReason: false };
    for (const sql of auditTriggerSql(table)) await pool.query(sql);
    await pool.query("insert into items select g, 'item ' || g from generate_series(1, 20) g");
    await pool.query("update items set label = label || '!' where id <= 10");
    await sealAll(pool);
    const before = await sealRows(pool);
    assert.equal(before.length, 30);

    // A transaction running across the upgrade holds the horizon (it writes elsewhere: the upgrade's DDL
    // needs the audit tables to itself), so a commit after it stays unsealed by the old sealer.
    await pool.query("create table public.other (id int primary key)");
    const blocker = await pool.connect();
    const long = await pool.connect();
    try {
      await blocker.query("begin");
      await blocker.query("insert into other values (1)");
      await pool.query("update items set label = 'pending' where id = 12");
      await sealAudit(pool);
      assert.equal((await unsealedIds(pool)).length, 1);

      await installAudit(pool);
      const upgraded = await head(pool);
      assert.equal(upgraded.floorId, 0, "the first seal after the upgrade reads the log from the start");
      const { rows: indexes } = await pool.query(
        "select count(*)::int as n from pg_indexes where schemaname = 'pgshift' and tablename = 'audit_log' and indexname <> 'audit_log_pkey'",
      );
      assert.equal(indexes[0].n, 0, "the txid BRIN is gone");

      // An audited transaction left running draws an id below the rows committed after it.
      await long.query("begin");
      await long.query("update items set label = 'long' where id = 11");
      const { rows: longRow } = await long.query("select max(id)::text as id from pgshift.audit_log");
      await pool.query("update items set label = 'upgraded' where id = 13");
      await sealAudit(pool);
      await blocker.query("commit");
      await sealAudit(pool);
      await sealAudit(pool);
      // The running transaction holds the horizon: its row and the later commit wait; the floor stays below it.
      const held = await head(pool);
      assert.ok(
        held.floorId < Number(longRow[0].id),
        `floor ${held.floorId} below the running row ${longRow[0].id}`,
      );
      assert.ok((await unsealedIds(pool)).length >= 1);
      assert.deepEqual((await verifyAudit({ pool, seal: false })).problems, []);
      await long.query("commit");
    } finally {
      await blocker.query("rollback").catch(() => undefined);
      blocker.release();
      long.release();
    }
    await sealAll(pool);
    const after = await sealRows(pool);
    assert.deepEqual(after.slice(0, before.length), before, "nothing sealed before the upgrade changed");
    assert.equal(after.length, before.length + 3);
    const verified = await verifyAudit({ pool });
    assert.deepEqual(verified.problems, []);
    assert.equal(verified.unsealed, 0);
    assert.equal(verified.rowsChecked, after.length);

    // The late-row check still fires: a back-dated row written behind the sealer is never sealed.
    await sealUntilFloorAtEnd(pool);
    await pool.query(
      `insert into pgshift.audit_log (txid, kind, table_schema, table_name, op, row_key, new_row, db_user)
       values (3, 'row', 'public', 'items', 'insert', '{"id": 99}', '{"id": 99}', 'app')`,
    );
    await sealAudit(pool);
    const tampered = await verifyAudit({ pool });
    assert.equal(tampered.ok, false);
    assert.equal(tampered.problems[0]!.kind, "inserted");
  } finally {
    await db.drop();
  }
});

test("writers holding transactions open across seals: every row sealed once, in commit-horizon order, the floor never passing a running one", async () => {
  const db = await privateServer();
  try {
    const { pool } = db;
    await installAudit(pool);
    await pool.query("create table public.counters (id int primary key, n int not null)");
    await pool.query("insert into counters select g, 0 from generate_series(1, 50) g");
    for (const sql of auditTriggerSql({
      schema: "public",
      name: "counters",
      keyColumns: ["id"],
      requireReason: false,
    }))
      await pool.query(sql);
    await sealUntilFloorAtEnd(pool);

    const violations: string[] = [];
    let writing = true;
    // Long transactions: each draws an audit id early, sleeps across several seals, writes again, commits.
    const longWriters = Array.from({ length: 3 }, async (_, w) => {
      let rounds = 0;
      while (writing) {
        const client = await pool.connect();
        try {
          await client.query("begin");
          await client.query("update counters set n = n + 1 where id = $1", [w + 1]);
          const { rows } = await client.query(
            "select min(id)::bigint as first from pgshift.audit_log where txid = txid_current()",
          );
          const first = Number(rows[0].first);
          for (let i = 0; i < 3; i++) {
            await new Promise((resolve) => setTimeout(resolve, 40));
            const now = await head(pool);
            if (now.floorId >= first) violations.push(`floor ${now.floorId} passed running row ${first}`);
          }
          await client.query("update counters set n = n + 1 where id = $1", [w + 10]);
          await client.query(rounds % 4 === 3 ? "rollback" : "commit");
        } finally {
          client.release();
        }
        rounds++;
      }
    });
    // Short transactions as fast as they go, so that seals land between a writer's txid and its audit id.
    const shortWriters = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 250; i++)
        await pool.query("update counters set n = n + 1 where id = $1", [20 + w * 5 + (i % 5)]);
    });
    let sealing = true;
    const sealer = (async () => {
      let rounds = 0;
      while (sealing) {
        await sealAudit(pool);
        rounds++;
      }
      return rounds;
    })();
    await Promise.all(shortWriters);
    writing = false;
    await Promise.all(longWriters);
    sealing = false;
    assert.ok((await sealer) > 3);
    await sealAll(pool);
    assert.deepEqual(violations, []);

    // Every committed row sealed exactly once; within each batch (one txid range) ids ascend with seq.
    const { rows: dup } = await pool.query(
      "select count(*)::int as seals, count(distinct audit_id)::int as rows from pgshift.audit_seal",
    );
    assert.equal(dup[0].seals, dup[0].rows);
    // A row sealed after one with a higher id waited for the horizon: its transaction is the later one.
    const { rows: order } = await pool.query(
      `select count(*)::int as n from pgshift.audit_seal s1 join pgshift.audit_log a1 on a1.id = s1.audit_id
         join pgshift.audit_seal s2 on s2.seq > s1.seq join pgshift.audit_log a2 on a2.id = s2.audit_id
        where a2.id < a1.id and a2.txid <= a1.txid`,
    );
    assert.equal(order[0].n, 0);
    const verified = await verifyAudit({ pool });
    assert.deepEqual(verified.problems, []);
    assert.equal(verified.unsealed, 0);
    const final = await sealUntilFloorAtEnd(pool);
    assert.equal(final.seq, verified.headSeq);
  } finally {
    await db.drop();
  }
});
