import { join } from "node:path";
import pg from "pg";
import {
  disableAudit,
  enableAudit,
  sealAudit,
  startAuditSealer,
  verifyAudit,
} from "../../src/audit/index.ts";
import type { BenchContext } from "../lib/context.ts";
import { dropDatabase, freshDatabase, settle } from "../lib/instance.ts";
import { median, round, timed } from "../lib/measure.ts";
import { pgbenchBinary, runPgbench } from "../lib/pgbench.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";

const ROWS = 100_000;
const CLIENTS = 4;
const DATABASE = "bench_audit";

/**
 * The write modes compared side by side: no trigger; a trigger that does nothing (the floor of any
 * row trigger); a supa_audit-style row trigger (old and new jsonb, no who/why/key, no chain); pgshift
 * audit with its sealer running every second (as deployed); and pgshift audit without the sealer (what
 * the trigger alone costs).
 */
type Mode = "none" | "bare" | "supa" | "pgshift" | "pgshift_no_sealer";
const MODE_LABEL: Record<Mode, string> = {
  none: "no trigger",
  bare: "empty row trigger (floor)",
  supa: "supa_audit-style trigger (old/new jsonb, no who/why/chain)",
  pgshift: "pgshift audit, sealer every second",
  pgshift_no_sealer: "pgshift audit, no sealer running",
};
type Commit = "durable" | "async";

const tableDdl = (name: string) =>
  `drop table if exists ${name}; create table ${name} (id int primary key, name text not null, email text, payload text, amount numeric, updated_at timestamptz);`;
// ~350-byte rows, as in issue 18's measurements
const fill = (name: string, n: number) =>
  `insert into ${name} select g, 'name ' || g, 'user' || g || '@example.org', repeat(md5(g::text), 8), g * 1.5, now() from generate_series(1, ${n}) g`;

const SUPA_SQL = `
  create table supa_log (id bigserial primary key, ts timestamptz default clock_timestamp(),
    table_oid oid, op text, record jsonb, old_record jsonb);
  create function supa_trigger() returns trigger language plpgsql as $$
  begin
    insert into supa_log (table_oid, op, record, old_record)
    values (tg_relid, tg_op, case when tg_op <> 'DELETE' then to_jsonb(new) end,
            case when tg_op <> 'INSERT' then to_jsonb(old) end);
    return null;
  end $$;
  create function bare_trigger() returns trigger language plpgsql as $$ begin return null; end $$;`;

/** The pgbench transaction: one single-row UPDATE (a row trigger fires once per transaction). */
const UPDATE_SCRIPT = `\\set id random(1, ${ROWS})\nupdate acct set amount = amount + 1, updated_at = now() where id = :id;\n`;

interface WaitSample {
  samples: number;
  /** "type:event" (or "cpu" when the backend was not waiting) -> how often a pgbench backend was seen so. */
  events: Record<string, number>;
}

/** Samples what the pgbench backends wait on, every 50 ms, until stopped. */
function sampleWaits(pool: pg.Pool): { stop(): Promise<WaitSample> } {
  const result: WaitSample = { samples: 0, events: {} };
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rows } = await pool.query(
        `select coalesce(wait_event_type || ':' || wait_event, 'cpu') as event, count(*)::int as n
           from pg_stat_activity where application_name = 'pgbench' and state = 'active' group by 1`,
      );
      result.samples++;
      for (const r of rows) result.events[r.event] = (result.events[r.event] ?? 0) + r.n;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return result;
    },
  };
}

/**
 * The audit trail's cost (issue 18): single-row UPDATE transactions at 4 clients (pgbench) in five write
 * modes, durable and with synchronous_commit off, rounds interleaved so the shared machine's noise hits
 * all alike; a 100k-row INSERT ... SELECT with and without audit; the seal of those rows; verify's rows/s.
 */
export async function auditScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const rounds = ctx.mode === "quick" ? 2 : 3;
  const seconds = ctx.mode === "quick" ? 8 : 15;
  const result = emptyScenario(
    "audit",
    `pgshift audit on ~350-byte rows: single-row UPDATE transactions at ${CLIENTS} clients (pgbench -M prepared, ${rounds} interleaved rounds of ${seconds} s per mode, medians) with no trigger, an empty trigger, a supa_audit-style trigger and pgshift audit, durable and with synchronous_commit off; a ${ROWS.toLocaleString("en-US")}-row INSERT ... SELECT with and without audit; seal and verify rates.`,
  );
  result.params = { rows: ROWS, clients: CLIENTS, rounds, seconds };
  const binary = pgbenchBinary();
  const url = await freshDatabase(ctx.instance.adminUrl, DATABASE);
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  try {
    await pool.query(tableDdl("acct"));
    await pool.query(fill("acct", ROWS));
    await pool.query(SUPA_SQL);
    await pool.query("vacuum analyze acct");

    const setMode = async (table: string, mode: Mode) => {
      await pool.query(
        `drop trigger if exists supa_audit on ${table}; drop trigger if exists bare on ${table}`,
      );
      if ((await pool.query("select to_regclass('pgshift.audit_tables') as t")).rows[0].t)
        await disableAudit({ pool, tables: [table] });
      if (mode === "supa")
        await pool.query(
          `create trigger supa_audit after insert or update or delete on ${table} for each row execute function supa_trigger()`,
        );
      if (mode === "bare")
        await pool.query(
          `create trigger bare after insert or update or delete on ${table} for each row execute function bare_trigger()`,
        );
      if (mode === "pgshift" || mode === "pgshift_no_sealer") await enableAudit({ pool, tables: [table] });
    };

    // --- single-row transactions ---
    const modesFor: Record<Commit, Mode[]> = {
      durable: ["none", "supa", "pgshift"],
      async: ["none", "bare", "supa", "pgshift", "pgshift_no_sealer"],
    };
    const tps: Record<Commit, Partial<Record<Mode, number[]>>> = { durable: {}, async: {} };
    const waits: Partial<Record<`${Commit}_${Mode}`, WaitSample>> = {};
    if (!binary) {
      result.status = "partial";
      result.notes.push("not available: no pgbench next to the server binaries; the tps rows are missing.");
    } else {
      for (const commit of ["durable", "async"] as Commit[]) {
        await pool.query(
          `alter database ${DATABASE} set synchronous_commit = ${commit === "durable" ? "on" : "off"}`,
        );
        for (let r = 1; r <= rounds; r++) {
          for (const mode of modesFor[commit]) {
            ctx.log(`audit: ${commit} commit, ${MODE_LABEL[mode]} (round ${r}/${rounds})`);
            await setMode("acct", mode);
            await settle(ctx.instance.adminUrl);
            const sealer = mode === "pgshift" ? startAuditSealer(pool, { intervalMs: 1000 }) : undefined;
            const sampler = r === rounds ? sampleWaits(pool) : undefined;
            try {
              const run = await runPgbench(binary, {
                url,
                script: UPDATE_SCRIPT,
                clients: CLIENTS,
                threads: 2,
                durationS: seconds,
                workDir: join(ctx.workDir, `audit-${commit}-${mode}-${r}`),
              });
              (tps[commit][mode] ??= []).push(run.qps);
            } finally {
              await sealer?.stop();
              if (sampler) waits[`${commit}_${mode}`] = await sampler.stop();
            }
          }
        }
      }
      await pool.query(`alter database ${DATABASE} reset synchronous_commit`);
    }
    await setMode("acct", "none");
    await sealAudit(pool);

    // --- bulk insert ---
    const bulkModes: Mode[] = ["none", "supa", "pgshift"];
    const bulkMs: Partial<Record<Mode, number[]>> = {};
    for (let r = 1; r <= rounds; r++) {
      for (const mode of bulkModes) {
        ctx.log(
          `audit: ${ROWS.toLocaleString("en-US")}-row INSERT ... SELECT, ${MODE_LABEL[mode]} (round ${r}/${rounds})`,
        );
        await pool.query(tableDdl("bulk"));
        await setMode("bulk", mode);
        await settle(ctx.instance.adminUrl);
        const { ms } = await timed(() => pool.query(fill("bulk", ROWS)));
        (bulkMs[mode] ??= []).push(ms);
        await setMode("bulk", "none");
        await pool.query("drop table bulk");
      }
    }

    // --- seal (the last bulk rounds' rows and what the tps runs left) and verify ---
    const sealed = await timed(() => sealAudit(pool));
    const verifyRuns: { ms: number; rows: number; ok: boolean }[] = [];
    for (let i = 0; i < rounds; i++) {
      const verified = await verifyAudit({ pool, seal: false });
      verifyRuns.push({ ms: verified.durationMs, rows: verified.rowsChecked, ok: verified.ok });
    }
    const verifyMs = median(verifyRuns.map((v) => v.ms));
    const verifyRows = verifyRuns[0]!.rows;
    const verifyOk = verifyRuns.every((v) => v.ok);

    const med = (values: number[] | undefined) => (values?.length ? median(values) : null);
    const div = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);
    const tpsOf = (commit: Commit, mode: Mode) => med(tps[commit][mode]);
    const bulkOf = (mode: Mode) => med(bulkMs[mode]);

    result.measurements = {
      tps: Object.fromEntries(
        (["durable", "async"] as Commit[]).map((commit) => [
          commit,
          Object.fromEntries(
            modesFor[commit].map((mode) => [
              mode,
              {
                median: round(tpsOf(commit, mode) ?? Number.NaN, 0),
                runs: (tps[commit][mode] ?? []).map((v) => round(v, 0)),
              },
            ]),
          ),
        ]),
      ),
      wait_events_last_round: waits,
      bulk_insert_ms: Object.fromEntries(
        bulkModes.map((mode) => [
          mode,
          {
            median: round(bulkOf(mode) ?? Number.NaN, 0),
            runs: (bulkMs[mode] ?? []).map((v) => round(v, 0)),
          },
        ]),
      ),
      seal: {
        rows: sealed.value.sealed,
        ms: round(sealed.ms, 0),
        rows_per_s: round(sealed.value.sealed / (sealed.ms / 1000), 0),
      },
      verify: {
        ok: verifyOk,
        rows: verifyRows,
        ms_runs: verifyRuns.map((v) => v.ms),
        rows_per_s: round(verifyRows / (verifyMs / 1000), 0),
      },
    };

    result.ratios.audit_tps_vs_unaudited = ratio(
      "pgshift audit tps (sealer running) / no-trigger tps, single-row UPDATE, 4 clients, durable commit",
      div(tpsOf("durable", "pgshift"), tpsOf("durable", "none")),
      { op: ">=", value: 0.6 },
    );
    result.ratios.audit_tx_time_vs_supa_style = ratio(
      "time per transaction, pgshift audit (sealer running) / supa_audit-style trigger, durable commit",
      div(tpsOf("durable", "supa"), tpsOf("durable", "pgshift")),
      { op: "<=", value: 1.2 },
    );
    result.ratios.audit_tps_vs_unaudited_async = ratio(
      "the same with synchronous_commit = off (CPU-bound): pgshift audit tps / no-trigger tps",
      div(tpsOf("async", "pgshift"), tpsOf("async", "none")),
      { op: ">=", value: 0.6 },
    );
    result.ratios.audit_tx_time_vs_supa_style_async = ratio(
      "the same with synchronous_commit = off: time per transaction, pgshift audit / supa_audit-style",
      div(tpsOf("async", "supa"), tpsOf("async", "pgshift")),
      { op: "<=", value: 1.2 },
    );
    result.ratios.audit_bulk_insert_vs_unaudited = ratio(
      `${ROWS.toLocaleString("en-US")}-row INSERT ... SELECT wall, pgshift audit / no trigger`,
      div(bulkOf("pgshift"), bulkOf("none")),
      { op: "<=", value: 4 },
    );
    result.ratios.audit_verify_rows_per_s = ratio(
      "pgshift audit verify: sealed audit rows checked per second",
      verifyOk ? verifyRows / (verifyMs / 1000) : null,
      { op: ">=", value: 200_000 },
    );
    result.ratios.audit_seal_rows_per_s = ratio(
      "pgshift audit seal: audit rows chained per second",
      sealed.value.sealed > 0 ? sealed.value.sealed / (sealed.ms / 1000) : null,
      null,
    );

    for (const commit of ["durable", "async"] as Commit[]) {
      const none = tpsOf(commit, "none");
      result.tables.push({
        title: `Single-row UPDATE, ${CLIENTS} clients, ${commit === "durable" ? "durable commit" : "synchronous_commit = off"} (median tps of ${rounds} rounds)`,
        headers: ["mode", "tps", "vs no trigger", "runs"],
        rows: modesFor[commit].map((mode) => [
          MODE_LABEL[mode],
          round(tpsOf(commit, mode) ?? Number.NaN, 0),
          round(div(tpsOf(commit, mode), none) ?? Number.NaN, 2),
          (tps[commit][mode] ?? []).map((v) => round(v, 0)).join(" "),
        ]),
      });
    }
    result.tables.push({
      title: `${ROWS.toLocaleString("en-US")}-row INSERT ... SELECT (median of ${rounds})`,
      headers: ["mode", "wall ms", "vs no trigger", "runs"],
      rows: bulkModes.map((mode) => [
        MODE_LABEL[mode],
        round(bulkOf(mode) ?? Number.NaN, 0),
        round(div(bulkOf(mode), bulkOf("none")) ?? Number.NaN, 2),
        (bulkMs[mode] ?? []).map((v) => round(v, 0)).join(" "),
      ]),
    });
    result.tables.push({
      title: "Seal and verify",
      headers: ["step", "audit rows", "ms", "rows/s"],
      rows: [
        [
          "seal",
          sealed.value.sealed,
          round(sealed.ms, 0),
          round(sealed.value.sealed / (sealed.ms / 1000), 0),
        ],
        ["verify (median)", verifyRows, verifyMs, round(verifyRows / (verifyMs / 1000), 0)],
      ],
    });
    if (!verifyOk) {
      result.status = "failed";
      result.notes.push("verify found problems in an untampered trail: a false alarm.");
    }
    result.notes.push(
      "Wait events: what the pgbench backends were seen waiting on (every 50 ms, last round; cpu = not waiting) are in measurements.wait_events_last_round.",
    );
    return result;
  } finally {
    await pool.end();
    await dropDatabase(ctx.instance.adminUrl, DATABASE);
  }
}
