/**
 * One-off measurement of the audit trail's cost (not yet a bench scenario):
 *   node bin/run-ts.js bench/audit-measure.ts [URL|-] [seconds] [rounds]
 * Single-row UPDATE transactions at 4 clients (pgbench), no trigger vs a supa_audit-style trigger
 * (old/new jsonb, no who/why/chain) vs pgshift audit (with a sealer running every second); rounds
 * interleave the three so that the shared machine's noise hits all alike. Then a 100k-row bulk
 * insert with and without audit, the seal of those rows, and verify's rows/s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { enableAudit, disableAudit, sealAudit, startAuditSealer, verifyAudit } from "../src/audit/index.ts";
import {
  findPgBinaries,
  localInstanceUrl,
  startLocalInstance,
  destroyLocalInstance,
} from "../src/local/index.ts";
import { pgbenchBinary, runPgbench } from "./lib/pgbench.ts";

const [urlArg = "", secondsText = "10", roundsText = "2"] = process.argv.slice(2);
// "-" (or no URL): a private managed instance for this run, removed afterwards.
const instance =
  urlArg && urlArg !== "-"
    ? undefined
    : {
        name: `audit-measure-${process.pid}`,
        baseDir: join(tmpdir(), "pgshift-audit-measure"),
        ephemeral: true,
        binaries: findPgBinaries(),
      };
if (instance) await startLocalInstance(instance);
const url = instance ? localInstanceUrl(instance) : urlArg;
const pool = new pg.Pool({ connectionString: url, max: 6 });
const binary = pgbenchBinary();
if (!binary) throw new Error("no pgbench");
const rows = 100_000;
const work = mkdtempSync(join(tmpdir(), "audit-measure-"));

const tableDdl = (name: string) =>
  `drop table if exists ${name}; create table ${name} (id int primary key, name text not null, email text, payload text, amount numeric, updated_at timestamptz);`;
const fill = (name: string, n: number) =>
  `insert into ${name} select g, 'name ' || g, 'user' || g || '@example.org', repeat(md5(g::text), 8), g * 1.5, now() from generate_series(1, ${n}) g`;

async function setup(): Promise<void> {
  await pool.query(tableDdl("acct"));
  await pool.query(fill("acct", rows));
  await pool.query(`
    create table if not exists supa_log (id bigserial primary key, ts timestamptz default clock_timestamp(),
      table_oid oid, op text, record jsonb, old_record jsonb);
    create or replace function supa_trigger() returns trigger language plpgsql as $$
    begin
      insert into supa_log (table_oid, op, record, old_record)
      values (tg_relid, tg_op, case when tg_op <> 'DELETE' then to_jsonb(new) end,
              case when tg_op <> 'INSERT' then to_jsonb(old) end);
      return null;
    end $$;`);
  await pool.query("vacuum analyze acct");
}

type Mode = "none" | "supa" | "pgshift";
async function setMode(mode: Mode): Promise<void> {
  await pool.query("drop trigger if exists supa_audit on acct");
  if ((await pool.query("select to_regclass('pgshift.audit_tables') t")).rows[0].t)
    await disableAudit({ pool, tables: ["acct"] });
  if (mode === "supa")
    await pool.query(
      "create trigger supa_audit after insert or update or delete on acct for each row execute function supa_trigger()",
    );
  if (mode === "pgshift") await enableAudit({ pool, tables: ["acct"] });
}

const script = `\\set id random(1, ${rows})\nupdate acct set amount = amount + 1, updated_at = now() where id = :id;\n`;

async function tps(mode: Mode, seconds: number): Promise<number> {
  await setMode(mode);
  const sealer = mode === "pgshift" ? startAuditSealer(pool, { intervalMs: 1000 }) : undefined;
  try {
    const run = await runPgbench(binary!, {
      url,
      script,
      clients: 4,
      threads: 2,
      durationS: seconds,
      workDir: join(work, `${mode}-${Date.now()}`),
    });
    return run.qps;
  } finally {
    await sealer?.stop();
  }
}

async function bulk(mode: Mode): Promise<number> {
  await pool.query(tableDdl("bulk"));
  if (mode === "pgshift") await enableAudit({ pool, tables: ["bulk"] });
  if (mode === "supa")
    await pool.query(
      "create trigger supa_audit after insert or update or delete on bulk for each row execute function supa_trigger()",
    );
  const started = performance.now();
  await pool.query(fill("bulk", rows));
  const ms = performance.now() - started;
  if (mode === "pgshift") await disableAudit({ pool, tables: ["bulk"] });
  await pool.query("drop table bulk");
  return ms;
}

await setup();
const seconds = Number(secondsText);
const results: Record<Mode, number[]> = { none: [], supa: [], pgshift: [] };
for (let round = 0; round < Number(roundsText); round++) {
  for (const mode of ["none", "supa", "pgshift"] as Mode[]) results[mode].push(await tps(mode, seconds));
}
await setMode("none");
await sealAudit(pool);
const bulkMs: Record<Mode, number[]> = { none: [], supa: [], pgshift: [] };
for (let round = 0; round < 2; round++) {
  for (const mode of ["none", "supa", "pgshift"] as Mode[]) bulkMs[mode].push(await bulk(mode));
}
const sealStarted = performance.now();
const sealed = await sealAudit(pool);
const sealMs = performance.now() - sealStarted;
const verified = await verifyAudit({ pool, seal: false });
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const report = {
  tps: results,
  tpsMedian: { none: median(results.none), supa: median(results.supa), pgshift: median(results.pgshift) },
  tpsRatio: {
    pgshiftVsNone: median(results.pgshift) / median(results.none),
    pgshiftVsSupa: median(results.pgshift) / median(results.supa),
  },
  bulkMs,
  bulkRatio: {
    pgshiftVsNone: median(bulkMs.pgshift) / median(bulkMs.none),
    supaVsNone: median(bulkMs.supa) / median(bulkMs.none),
  },
  seal: {
    rows: sealed.sealed,
    ms: Math.round(sealMs),
    rowsPerS: Math.round(sealed.sealed / (sealMs / 1000)),
  },
  verify: {
    ok: verified.ok,
    rows: verified.rowsChecked,
    ms: verified.durationMs,
    rowsPerS: Math.round(verified.rowsChecked / (verified.durationMs / 1000)),
  },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
await pool.end();
rmSync(work, { recursive: true, force: true });
if (instance) await destroyLocalInstance(instance);
