import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { test } from "node:test";
import {
  auditLog,
  disableAudit,
  enableAudit,
  recordAuditEvent,
  signAuditRecord,
  verifyAudit,
  withAuditContext,
} from "../../../src/audit/index.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("audappend");
const appRole = `pgshift_app_${randomBytes(4).toString("hex")}`;

test("an application role cannot change the audit tables nor disable or drop the audit triggers", async () => {
  const { pool } = db();
  const role = quoteIdent(appRole);
  await pool.query(`create role ${role} nologin`);
  await pool.query(`grant create, usage on schema public to ${role}`);
  try {
    // The application owns its table (as after its own migrations): owners may ALTER their tables.
    await pool.query(
      `set role ${role}; create table public.batches (id int primary key, status text); reset role`,
    );
    await enableAudit({ pool, tables: ["batches"] });
    const client = await pool.connect();
    try {
      await client.query(`set role ${role}`);
      await client.query("insert into batches values (1, 'open')");
      const denied = async (sql: string, pattern: RegExp) => {
        await assert.rejects(client.query(sql), pattern, sql);
      };
      await denied("update pgshift.audit_log set reason = 'x'", /permission denied/);
      await denied("delete from pgshift.audit_log", /permission denied/);
      await denied("truncate pgshift.audit_log", /permission denied/);
      await denied("delete from pgshift.audit_seal", /permission denied/);
      await denied("update pgshift.audit_head set seq = 0", /permission denied/);
      await denied(
        "insert into pgshift.audit_log (kind, db_user) values ('event', 'forged')",
        /permission denied/,
      );
      await denied("delete from pgshift.audit_tables", /permission denied/);
      await denied("alter table batches disable trigger pgshift_audit", /without audit triggers/);
      await denied("alter table batches disable trigger all", /without audit triggers/);
      await denied("alter table batches disable trigger pgshift_audit_insert", /without audit triggers/);
      await denied("drop trigger pgshift_audit on batches", /without audit triggers/);
      await denied("drop table batches", /without audit triggers/);
      await denied("truncate batches", /TRUNCATE of audited table/);
      await denied("set session_replication_role = replica", /permission denied/);
      await client.query("update batches set status = 'closed' where id = 1");
      await client.query("reset role");
    } finally {
      client.release();
    }
    const { rows } = await pool.query(
      "select tgenabled from pg_trigger where tgrelid = 'public.batches'::regclass and tgname = 'pgshift_audit'",
    );
    assert.equal(rows[0].tgenabled, "A");
    const history = await auditLog({ pool, table: "batches", key: "1" });
    assert.deepEqual(
      history.map((e) => [e.op, e.dbUser]),
      [
        ["insert", appRole],
        ["update", appRole],
      ],
    );
  } finally {
    await disableAudit({ pool, tables: ["batches"] });
    await pool.query(`drop owned by ${role} cascade`);
    await pool.query(`drop role ${role}`);
  }
});

test("DDL and pgshift's own operations are recorded as audit events", async () => {
  const { pool } = db();
  await enableAudit({ pool, tables: [], schema: "public" });
  await pool.query("create table public.ddl_probe (id int primary key)");
  const { rows } = await pool.query(
    "select op, detail from pgshift.audit_log where kind = 'ddl' and detail ->> 'query' like '%ddl_probe%'",
  );
  assert.equal(rows.length, 1);
  assert.equal(rows[0].op, "create table");
  assert.deepEqual(rows[0].detail.objects, [
    { type: "table", identity: "public.ddl_probe" },
    { type: "index", identity: "public.ddl_probe_pkey" },
  ]);

  const id = await withAuditContext(pool, { actor: "ops", reason: "monthly import" }, (client) =>
    recordAuditEvent(client, { action: "import", detail: { rows: 10 }, report: '{"ok":true}' }),
  );
  const { rows: events } = await pool.query(
    "select op, detail, actor, reason from pgshift.audit_log where id = $1",
    [id],
  );
  assert.equal(events[0].op, "import");
  assert.equal(events[0].actor, "ops");
  assert.equal(events[0].detail.rows, 10);
  assert.match(events[0].detail.reportSha256, /^[0-9a-f]{64}$/);
  assert.deepEqual((await verifyAudit({ pool })).problems, []);
});

test("a signature binds signer, meaning and time to one record version and shows in the log", async () => {
  const { pool } = db();
  await pool.query("create table public.results (id int primary key, value numeric)");
  await enableAudit({ pool, tables: ["results"] });
  await pool.query("insert into results values (1, 4.2)");
  const [version] = await auditLog({ pool, table: "results", key: "1" });
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const signed = await signAuditRecord({
    pool,
    auditId: version!.id,
    signer: "Dr. A. Reviewer",
    meaning: "approval",
    key: { algorithm: "ed25519", privateKey },
  });
  assert.equal(signed.signature.signature?.algorithm, "ed25519");
  const [entry] = await auditLog({
    pool,
    table: "results",
    key: "1",
    checkingKey: { algorithm: "ed25519", publicKey },
  });
  assert.deepEqual(
    entry!.signatures.map((s) => [s.signer, s.meaning, s.recordMatches, s.signatureValid]),
    [["Dr. A. Reviewer", "approval", true, true]],
  );
  await assert.rejects(
    signAuditRecord({
      pool,
      auditId: signed.eventId,
      signer: "x",
      meaning: "review",
      key: { algorithm: "ed25519", privateKey },
    }),
    /not a record version/,
  );
  // Changing the signed version afterwards shows: the signature no longer matches it.
  await pool.query('update pgshift.audit_log set new_row = \'{"id": 1, "value": 9}\' where id = $1', [
    version!.id,
  ]);
  const [changed] = await auditLog({ pool, table: "results", key: "1" });
  assert.equal(changed!.signatures[0]!.recordMatches, false);
});
