import type pg from "pg";
import { withTransaction } from "../pg/pool.ts";
import type { AuditAnchor } from "./anchor.ts";
import { assertAuditInstalled } from "./install-audit.ts";
import { sealAudit } from "./seal-audit.ts";

export type AuditProblemKind =
  "changed" | "deleted" | "chain_broken" | "inserted" | "truncated" | "head_mismatch" | "anchor_missing";

export interface AuditProblem {
  kind: AuditProblemKind;
  /** Position in the chain, when the problem has one. */
  seq: number | null;
  /** The audit row concerned, when known. */
  auditId: string | null;
  message: string;
}

export interface VerifyAuditResult {
  ok: boolean;
  /** Seal rows whose hash was recomputed. */
  rowsChecked: number;
  headSeq: number;
  headHash: string;
  /** Rows not yet sealed (their transactions were still running). */
  unsealed: number;
  /** The first problem in chain order (the earliest bad row), then the others found. */
  problems: AuditProblem[];
  anchor?: { seq: number; hash: string; found: boolean };
  durationMs: number;
}

export interface VerifyAuditOptions {
  pool: pg.Pool;
  /** Seal pending rows first (default true). */
  seal?: boolean;
  /** A chain head exported earlier: the chain must still contain it. */
  anchor?: AuditAnchor;
}

const GENESIS = "00".repeat(32);

/**
 * Recomputes the chain: for every seal row, hash = sha256(prev_hash || sha256(canonical audit row)), prev_hash is
 * the previous seal's hash and seq has no gap. That is checked set-based (one scan, no recursion),
 * which is equivalent to walking the chain. Then the head, rows inserted behind the sealer's back, and
 * the anchor.
 */
export async function verifyAudit(options: VerifyAuditOptions): Promise<VerifyAuditResult> {
  const started = Date.now();
  const { pool } = options;
  await assertAuditInstalled(pool);
  if (options.seal !== false) await sealAudit(pool);
  // One snapshot for every check (repeatable read), without JIT (compiling costs more than it saves here).
  return withTransaction(
    pool,
    async (client) => {
      // Without JIT (compiling costs more than it saves here); work_mem so that the seal table's hash
      // (~100 bytes a row) stays in memory instead of spilling to batches.
      await client.query("select set_config('jit', 'off', true), set_config('work_mem', '128MB', true)");
      const problems: AuditProblem[] = [];

      const { rows: headRows } = await client.query(
        `select h.seq, encode(h.hash, 'hex') as hash, h.horizon,
            (select max(seq) from pgshift.audit_seal) as max_seq,
            (select count(*) from pgshift.audit_seal)::bigint as seal_rows,
            (select encode(s.hash, 'hex') from pgshift.audit_seal s where s.seq = h.seq) as hash_at_head
       from pgshift.audit_head h`,
      );
      const head = headRows[0];
      const sealRows = Number(head.seal_rows);

      // Links first (a window over the small seal table), then hashes: an aggregate without a window, so
      // PostgreSQL hashes in parallel workers. The earlier of the two is the first bad row.
      const { rows: links } = await client.query(
        `select seq, audit_id::text, prev_seq,
            case when prev_seq is null and seq <> 1 then 'deleted_start'
                 when prev_seq is not null and seq <> prev_seq + 1 then 'gap'
                 else 'link' end as problem
       from (select seq, audit_id, prev_hash, lag(seq) over w as prev_seq, lag(hash) over w as expected_prev
               from pgshift.audit_seal window w as (order by seq)) c
      where (prev_seq is null and (seq <> 1 or prev_hash <> decode($1, 'hex')))
         or (prev_seq is not null and (seq <> prev_seq + 1 or prev_hash <> expected_prev))
      order by seq limit 1`,
        [GENESIS],
      );
      // One pass over the audit rows, the seal table hashed beside them (the small side, so the big rows
      // stream through a parallel hash join): every sealed row's hash recomputed, and the rows without a
      // seal counted, the first of them below the horizon kept (written behind the sealer's back). Seal
      // rows whose audit row is gone do not join: the count tells, a second query names the first.
      const { rows: pass } = await client.query(
        `select count(s.seq)::bigint as joined,
            count(*) filter (where s.seq is null)::bigint as unsealed,
            min(s.seq) filter (where s.hash <> sha256(s.prev_hash || pgshift.audit_leaf(a))) as bad_seq,
            min(a.id) filter (where s.seq is null and a.txid < $1) as late_id
       from pgshift.audit_log a left join pgshift.audit_seal s on s.audit_id = a.id`,
        [head.horizon],
      );
      const joined = Number(pass[0].joined);
      let badSeq: { seq: number; problem: "hash" | "missing" } | undefined =
        pass[0].bad_seq === null ? undefined : { seq: Number(pass[0].bad_seq), problem: "hash" };
      if (joined < sealRows) {
        const { rows: missing } = await client.query(
          `select min(s.seq) as seq from pgshift.audit_seal s
            where not exists (select from pgshift.audit_log a where a.id = s.audit_id)`,
        );
        const seq = Number(missing[0].seq);
        if (!badSeq || seq < badSeq.seq) badSeq = { seq, problem: "missing" };
      }
      const rowsChecked = sealRows;
      let first: { seq: number; auditId: string; problem: string; prevSeq: number | null } | undefined;
      if (links[0])
        first = {
          seq: Number(links[0].seq),
          auditId: links[0].audit_id,
          problem: links[0].problem,
          prevSeq: links[0].prev_seq === null ? null : Number(links[0].prev_seq),
        };
      if (badSeq && (!first || badSeq.seq < first.seq)) {
        const { rows } = await client.query(
          "select audit_id::text from pgshift.audit_seal where seq = $1 order by audit_id limit 1",
          [badSeq.seq],
        );
        first = { seq: badSeq.seq, auditId: rows[0].audit_id, problem: badSeq.problem, prevSeq: null };
      }
      if (first) {
        const { seq, auditId } = first;
        const text: Record<string, [AuditProblemKind, string]> = {
          deleted_start: [
            "deleted",
            `seal rows before seq ${seq} are missing: the start of the trail was deleted`,
          ],
          gap: [
            "deleted",
            `seal rows ${(first.prevSeq ?? 0) + 1}..${seq - 1} are missing: audit rows were deleted`,
          ],
          link: [
            "chain_broken",
            `seq ${seq} (audit row ${auditId}) does not link to the previous hash: rows were removed, inserted or reordered`,
          ],
          missing: ["deleted", `audit row ${auditId} (seq ${seq}) was deleted`],
          hash: ["changed", `audit row ${auditId} (seq ${seq}) was changed after it was sealed`],
        };
        const [kind, message] = text[first.problem]!;
        problems.push({ kind, seq, auditId, message });
      }

      const headSeq = Number(head.seq);
      const maxSeq = head.max_seq === null ? 0 : Number(head.max_seq);
      if (maxSeq < headSeq)
        problems.push({
          kind: "truncated",
          seq: maxSeq + 1,
          auditId: null,
          message: `the chain ends at seq ${maxSeq} but its head says ${headSeq}: the tail was truncated`,
        });
      else if (maxSeq > headSeq)
        problems.push({
          kind: "inserted",
          seq: headSeq + 1,
          auditId: null,
          message: `seal rows beyond the head (seq ${headSeq + 1}..${maxSeq}) were added outside the sealer`,
        });
      else if (headSeq > 0 && head.hash_at_head !== head.hash)
        problems.push({
          kind: "head_mismatch",
          seq: headSeq,
          auditId: null,
          message: `the head's hash differs from the chain's hash at seq ${headSeq}`,
        });

      // Every row of a transaction below the horizon was sealed when the horizon passed it: one found
      // unsealed now was written afterwards with a back-dated transaction id.
      if (pass[0].late_id !== null) {
        const { rows: late } = await client.query(
          "select id::text, txid::text from pgshift.audit_log where id = $1",
          [pass[0].late_id],
        );
        problems.push({
          kind: "inserted",
          seq: null,
          auditId: late[0].id,
          message: `audit row ${late[0].id} (txid ${late[0].txid}) was inserted after its transaction's rows were sealed`,
        });
      }
      const unsealed = Number(pass[0].unsealed);

      let anchor: VerifyAuditResult["anchor"];
      if (options.anchor) {
        const { rows } = await client.query(
          "select encode(hash, 'hex') as hash from pgshift.audit_seal where seq = $1",
          [options.anchor.seq],
        );
        const found = rows[0]?.hash === options.anchor.hash;
        const { rows: acknowledged } = found
          ? { rows: [] as { id: string }[] }
          : await client.query(
              `select id::text from pgshift.audit_log
                where kind = 'event' and op = 'restore_acknowledged' and detail -> 'lostAnchor' ->> 'hash' = $1
                order by id limit 1`,
              [options.anchor.hash],
            );
        anchor = { seq: options.anchor.seq, hash: options.anchor.hash, found };
        if (!found)
          problems.push({
            kind: "anchor_missing",
            seq: options.anchor.seq,
            auditId: null,
            message:
              (rows[0]
                ? `the chain at seq ${options.anchor.seq} differs from the anchor of ${options.anchor.createdAt}: the trail was rewritten`
                : `the chain ends at seq ${maxSeq}, before the anchor's seq ${options.anchor.seq} (${options.anchor.createdAt}): the database was rolled back or the trail truncated`) +
              (acknowledged[0]
                ? `; a restore was acknowledged in audit row ${acknowledged[0].id}: verify against the anchor taken then`
                : ""),
          });
      }

      return {
        ok: problems.length === 0,
        rowsChecked,
        headSeq,
        headHash: head.hash,
        unsealed,
        problems,
        ...(anchor ? { anchor } : {}),
        durationMs: Date.now() - started,
      };
    },
    { isolation: "repeatable read", readOnly: true },
  );
}
