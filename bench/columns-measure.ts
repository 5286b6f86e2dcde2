/**
 * One-off measurement of column encryption's cost on a SQLite import (not a bench scenario):
 *   node bin/run-ts.js bench/columns-measure.ts [URL|-] [rows] [rounds]
 * One table of `rows` (default 100k) patient-like rows (8 columns), imported plainly and with two
 * encrypted columns (ssn with a blind index, name) plus record MACs, alternated `rounds` times (default
 * 3), each with and without verification; the fastest of each is compared.
 * "-" (or no URL): a private managed instance for this run, removed afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { addKeyToJson, keyringFromJson } from "../src/crypto/keyring.ts";
import { importSqlite } from "../src/load/import-sqlite.ts";
import {
  destroyLocalInstance,
  findPgBinaries,
  localInstanceUrl,
  startLocalInstance,
} from "../src/local/index.ts";

const [urlArg = "", rowsText = "100000", roundsText = "3"] = process.argv.slice(2);
const instance =
  urlArg && urlArg !== "-"
    ? undefined
    : {
        name: `columns-measure-${process.pid}`,
        baseDir: join(tmpdir(), "pgshift-columns-measure"),
        ephemeral: true,
        binaries: findPgBinaries(),
      };
if (instance) await startLocalInstance(instance);
const url = instance ? localInstanceUrl(instance) : urlArg;
const pool = new pg.Pool({ connectionString: url, max: 8 });
const rows = Number(rowsText);
const rounds = Number(roundsText);
const work = mkdtempSync(join(tmpdir(), "columns-measure-"));
const keyring = keyringFromJson(addKeyToJson(undefined, "k1"), "bench keys");

const path = join(work, "clinic.db");
const db = new Database(path);
db.exec(`create table patients (id integer primary key, ssn text not null, name text, born date,
  city text, visits integer, balance real, notes text)`);
const insert = db.prepare("insert into patients values (?, ?, ?, ?, ?, ?, ?, ?)");
db.transaction(() => {
  for (let i = 1; i <= rows; i++)
    insert.run(
      i,
      `900-${String(i % 100).padStart(2, "0")}-${String(i).padStart(6, "0")}`,
      `Patient Name ${i}`,
      `19${50 + (i % 50)}-0${(i % 9) + 1}-1${i % 10}`,
      i % 3 ? "Lyon" : "Graz",
      i % 40,
      (i % 1000) / 7,
      `note ${i} with some words, "quoted" and longer text`,
    );
})();
db.close();

const times: Record<string, number[]> = {};
try {
  for (let round = 1; round <= rounds; round++)
    for (const verify of [false, true])
      for (const protect of [false, true]) {
        const label = `${protect ? "encrypted" : "plain"}${verify ? " + verify" : ""}`;
        const schema = `m_${protect ? "enc" : "plain"}`;
        await pool.query(`drop schema if exists ${schema} cascade`);
        const started = performance.now();
        const result = await importSqlite({
          path,
          pool,
          schema,
          verify,
          ...(protect
            ? {
                keyring,
                encryptedColumns: ["patients.ssn", "patients.name"],
                blindIndexColumns: ["patients.ssn"],
                integrity: true,
              }
            : {}),
        });
        const ms = performance.now() - started;
        if (!result.ok) throw new Error(`${label}: ${result.error?.message}`);
        (times[label] ??= []).push(ms);
        console.log(`round ${round} ${label}: ${Math.round(ms)} ms (data ${result.phases.data} s)`);
      }
  const best = (label: string) => Math.min(...times[label]!);
  for (const verify of ["", " + verify"])
    console.log(
      `import${verify}: encrypted (2 columns + blind index + MACs) / plain = ${(best(`encrypted${verify}`) / best(`plain${verify}`)).toFixed(2)}x (best of ${rounds}: ${Math.round(best(`encrypted${verify}`))} vs ${Math.round(best(`plain${verify}`))} ms; ${rows} rows, load ${loadavg()[0]!.toFixed(1)})`,
    );
} finally {
  await pool.end();
  rmSync(work, { recursive: true, force: true });
  if (instance) await destroyLocalInstance(instance);
}
