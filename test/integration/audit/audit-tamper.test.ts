import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import {
  acknowledgeRestore,
  createAuditAnchor,
  enableAudit,
  sealAudit,
  verifyAudit,
  type VerifyAuditResult,
  withAuditContext,
} from "../../../src/audit/index.ts";
import { createTestDatabase, type TestDatabase } from "../../helpers/database.ts";
import { sealAll } from "./seal-all.ts";

/** A fresh database with an audited table, 10 changes made and sealed; seq n holds audit row `ids[n-1]`. */
async function withTrail(fn: (db: TestDatabase, ids: string[]) => Promise<void>): Promise<void> {
  const db = await createTestDatabase("audtamper");
  try {
    await db.pool.query("create table public.items (id int primary key, label text)");
    await enableAudit({ pool: db.pool, tables: ["items"] });
    for (let i = 1; i <= 5; i++) {
      await withAuditContext(db.pool, { actor: `user-${i}`, reason: "entry" }, async (client) => {
        await client.query("insert into items values ($1, $2)", [i, `item ${i}`]);
        await client.query("update items set label = label || ' (checked)' where id = $1", [i]);
      });
    }
    await sealAll(db.pool);
    const { rows } = await db.pool.query("select audit_id::text from pgshift.audit_seal order by seq");
    const clean = await verifyAudit({ pool: db.pool });
    assert.deepEqual(clean.problems, [], "no false alarm before tampering");
    await fn(
      db,
      rows.map((r) => r.audit_id),
    );
  } finally {
    await db.drop();
  }
}

function firstProblem(result: VerifyAuditResult) {
  assert.equal(result.ok, false, "tampering must be found");
  return result.problems[0]!;
}

test("a changed audit row is found and named", async () => {
  await withTrail(async ({ pool }, ids) => {
    const victim = ids[5]!;
    await pool.query("update pgshift.audit_log set actor = 'someone else' where id = $1", [victim]);
    const problem = firstProblem(await verifyAudit({ pool }));
    assert.equal(problem.kind, "changed");
    assert.equal(problem.auditId, victim);
    assert.equal(problem.seq, 6);
  });
});

test("a deleted audit row is found, with or without its seal row", async () => {
  await withTrail(async ({ pool }, ids) => {
    await pool.query("delete from pgshift.audit_log where id = $1", [ids[3]]);
    const problem = firstProblem(await verifyAudit({ pool }));
    assert.equal(problem.kind, "deleted");
    assert.equal(problem.auditId, ids[3]);
    assert.equal(problem.seq, 4);
  });
  await withTrail(async ({ pool }, ids) => {
    await pool.query("delete from pgshift.audit_log where id = $1", [ids[3]]);
    await pool.query("delete from pgshift.audit_seal where seq = 4");
    const problem = firstProblem(await verifyAudit({ pool }));
    assert.equal(problem.kind, "deleted");
    assert.equal(problem.seq, 5);
    assert.match(problem.message, /seal rows 4\.\.4 are missing/);
  });
});

test("an audit row inserted behind the sealer, or a forged seal, is found", async () => {
  await withTrail(async ({ pool }) => {
    const { rows } = await pool.query(
      `insert into pgshift.audit_log (id, txid, kind, table_schema, table_name, op, row_key, new_row, db_user)
       overriding system value values (1000, 3, 'row', 'public', 'items', 'insert', '{"id": 99}', '{"id": 99}', 'app')
       returning id::text`,
    );
    const result = await verifyAudit({ pool });
    const problem = firstProblem(result);
    assert.equal(problem.kind, "inserted");
    assert.equal(problem.auditId, rows[0].id);
  });
  await withTrail(async ({ pool }, ids) => {
    // A forged entry in the middle of the chain: shift the later seals up by one.
    await pool.query("update pgshift.audit_seal set seq = seq + 1000 where seq > 3");
    await pool.query("update pgshift.audit_seal set seq = seq - 999 where seq > 1000");
    await pool.query(
      "insert into pgshift.audit_seal (seq, audit_id, prev_hash, hash) select 4, 1000, hash, hash from pgshift.audit_seal where seq = 3",
    );
    const problem = firstProblem(await verifyAudit({ pool }));
    assert.equal(problem.seq, 4);
    assert.equal(ids.length > 4, true);
  });
});

test("reordered audit rows are found", async () => {
  await withTrail(async ({ pool }, ids) => {
    await pool.query("update pgshift.audit_seal set audit_id = -1 where seq = 2");
    await pool.query("update pgshift.audit_seal set audit_id = $1 where seq = 3", [ids[1]]);
    await pool.query("update pgshift.audit_seal set audit_id = $1 where seq = 2", [ids[2]]);
    const problem = firstProblem(await verifyAudit({ pool }));
    assert.equal(problem.seq, 2);
    assert.equal(problem.auditId, ids[2]);
  });
});

test("a truncated tail is found", async () => {
  await withTrail(async ({ pool }, ids) => {
    const last = ids.length;
    await pool.query(
      "delete from pgshift.audit_log where id in (select audit_id from pgshift.audit_seal where seq > $1)",
      [last - 2],
    );
    await pool.query("delete from pgshift.audit_seal where seq > $1", [last - 2]);
    const result = await verifyAudit({ pool });
    const problem = firstProblem(result);
    assert.equal(problem.kind, "truncated");
    assert.equal(problem.seq, last - 1);
  });
});

test("a rollback to before an anchor is found only with the anchor; the anchor is signed", async () => {
  await withTrail(async ({ pool }) => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const early = await sealAudit(pool);
    await pool.query("insert into items values (6, 'six'), (7, 'seven')");
    await sealAll(pool);
    const anchor = await createAuditAnchor(pool, { algorithm: "ed25519", privateKey });
    assert.equal(anchor.seq, early.headSeq + 2);
    assert.equal(anchor.signature?.algorithm, "ed25519");
    assert.ok(publicKey);
    assert.deepEqual((await verifyAudit({ pool, anchor })).problems, []);

    // What a point-in-time restore to the earlier state leaves: a consistent chain, just shorter.
    await pool.query(
      "delete from pgshift.audit_log where id in (select audit_id from pgshift.audit_seal where seq > $1)",
      [early.headSeq],
    );
    await pool.query("delete from pgshift.audit_seal where seq > $1", [early.headSeq]);
    await pool.query("update pgshift.audit_head set seq = $1, hash = decode($2, 'hex')", [
      early.headSeq,
      early.headHash,
    ]);
    assert.deepEqual(
      (await verifyAudit({ pool })).problems,
      [],
      "a consistent rollback is invisible without an anchor",
    );
    const problem = firstProblem(await verifyAudit({ pool, anchor }));
    assert.equal(problem.kind, "anchor_missing");
    assert.match(problem.message, /rolled back/);

    // The restore was legitimate: acknowledging it is a signed audit event, and a new anchor follows.
    const acknowledged = await acknowledgeRestore({
      pool,
      anchor,
      key: { algorithm: "ed25519", privateKey },
      context: { actor: "dba", reason: "PITR after storage failure, change 4711" },
    });
    const { rows } = await pool.query(
      "select op, actor, reason, detail from pgshift.audit_log where id = $1",
      [acknowledged.eventId],
    );
    assert.equal(rows[0].op, "restore_acknowledged");
    assert.equal(rows[0].reason, "PITR after storage failure, change 4711");
    assert.equal(rows[0].detail.lostAnchor.seq, anchor.seq);
    assert.equal(rows[0].detail.signature.algorithm, "ed25519");
    assert.deepEqual((await verifyAudit({ pool, anchor: acknowledged.anchor })).problems, []);
    const old = firstProblem(await verifyAudit({ pool, anchor }));
    assert.match(old.message, new RegExp(`acknowledged in audit row ${acknowledged.eventId}`));
  });
});

test("no false alarm over concurrent writers and a sealer running meanwhile", async () => {
  const db = await createTestDatabase("audconc");
  try {
    const { pool } = db;
    await pool.query("create table public.counters (id int primary key, n int not null)");
    await pool.query("insert into counters select g, 0 from generate_series(1, 20) g");
    await enableAudit({ pool, tables: ["counters"] });
    let sealing = true;
    const sealer = (async () => {
      let rounds = 0;
      while (sealing) {
        await sealAudit(pool);
        rounds++;
      }
      return rounds;
    })();
    const clients = 6;
    const perClient = 40;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < perClient; i++) {
          await withAuditContext(pool, { actor: `client-${c}`, reason: "load" }, async (client) => {
            await client.query("update counters set n = n + 1 where id = $1", [((c * 7 + i) % 20) + 1]);
            await client.query("insert into counters values ($1, 0)", [1000 + c * perClient + i]);
          });
        }
      }),
    );
    sealing = false;
    const rounds = await sealer;
    assert.ok(rounds > 0);
    await sealAll(pool);
    const result = await verifyAudit({ pool });
    assert.deepEqual(result.problems, []);
    assert.equal(result.unsealed, 0);
    const { rows } = await pool.query(
      "select count(*)::int as n from pgshift.audit_log where kind = 'row' and table_name = 'counters'",
    );
    assert.equal(rows[0].n, clients * perClient * 2);
    assert.ok(result.rowsChecked >= clients * perClient * 2);
  } finally {
    await db.drop();
  }
});

test("a transaction still running is not sealed yet, and is no false alarm once it commits", async () => {
  const db = await createTestDatabase("audlong");
  try {
    const { pool } = db;
    await pool.query("create table public.t (id int primary key)");
    await enableAudit({ pool, tables: ["t"] });
    // enable's own audit events first: another test's open transaction (the horizon is cluster-wide) may
    // hold them back, and they would count as unsealed below
    await sealAll(pool);
    const long = await pool.connect();
    try {
      await long.query("begin");
      await long.query("insert into t values (1)");
      await pool.query("insert into t values (2)");
      const sealed = await verifyAudit({ pool });
      assert.deepEqual(sealed.problems, []);
      assert.equal(sealed.unsealed, 1, "the later commit waits behind the running transaction");
      await long.query("commit");
    } finally {
      long.release();
    }
    await sealAll(pool);
    const after = await verifyAudit({ pool });
    assert.deepEqual(after.problems, []);
    assert.equal(after.unsealed, 0);
  } finally {
    await db.drop();
  }
});
