import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { sealAudit } from "../../../src/audit/index.ts";

/**
 * Seals until no committed audit row is left unsealed. The sealing horizon is the oldest running
 * transaction of the whole cluster, so another test file's open transaction can hold it back for a while.
 */
export async function sealAll(pool: pg.Pool): Promise<void> {
  for (let attempt = 0; attempt < 240; attempt++) {
    await sealAudit(pool);
    const { rows } = await pool.query(
      "select count(*)::int as n from pgshift.audit_log a where not exists (select from pgshift.audit_seal s where s.audit_id = a.id)",
    );
    if (rows[0].n === 0) return;
    await sleep(250);
  }
  throw new Error("audit rows stayed unsealed for a minute: a transaction is left open somewhere");
}
