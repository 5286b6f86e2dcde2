/**
 * One-off measurement of field encryption's cost (not yet a bench scenario):
 *   node bin/run-ts.js bench/crypto-measure.ts [URL|-] [values] [docs] [rounds]
 * 1. The cipher, on `values` SSN-like strings (default 100k): client-side AES-256-GCM envelopes
 *    (src/crypto/field-cipher.ts) written as jsonb and read back and decrypted in Node, vs pgcrypto's
 *    pgp_sym_encrypt/pgp_sym_decrypt in the server (key as a parameter), with its default S2K and with
 *    s2k-mode=1 (one hash instead of 65536 iterations); the same INSERT ... SELECT FROM unnest batches.
 * 2. The document import of `docs` API-like documents (default 100k, bench/generate-documents.ts):
 *    plain vs two encrypted paths (/contact with a blind index, /address_1) plus record MACs,
 *    alternated `rounds` times (default 3) in one run; the fastest of each is compared.
 * "-" (or no URL): a private managed instance for this run, removed afterwards.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { decryptText, encryptText, type Envelope } from "../src/crypto/field-cipher.ts";
import { keyringFromJson, addKeyToJson } from "../src/crypto/keyring.ts";
import { importDocuments } from "../src/documents/import-documents.ts";
import {
  destroyLocalInstance,
  findPgBinaries,
  localInstanceUrl,
  startLocalInstance,
} from "../src/local/index.ts";
import { generateDocuments } from "./generate-documents.ts";

const [urlArg = "", valuesText = "100000", docsText = "100000", roundsText = "3"] = process.argv.slice(2);
const instance =
  urlArg && urlArg !== "-"
    ? undefined
    : {
        name: `crypto-measure-${process.pid}`,
        baseDir: join(tmpdir(), "pgshift-crypto-measure"),
        ephemeral: true,
        binaries: findPgBinaries(),
      };
if (instance) await startLocalInstance(instance);
const url = instance ? localInstanceUrl(instance) : urlArg;
const pool = new pg.Pool({ connectionString: url, max: 6 });
const values = Number(valuesText);
const docs = Number(docsText);
const rounds = Number(roundsText);
const work = mkdtempSync(join(tmpdir(), "crypto-measure-"));
const BATCH = 10_000;
const keyring = keyringFromJson(addKeyToJson(undefined, "k1"), "bench keys");
const passphrase = randomBytes(32).toString("base64");

async function timed(label: string, fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  const ms = performance.now() - started;
  console.log(
    `${label}: ${Math.round(ms)} ms (${Math.round(values / (ms / 1000)).toLocaleString("en-US")} values/s)`,
  );
  return ms;
}

try {
  await pool.query("create extension if not exists pgcrypto");
  const plain = Array.from(
    { length: values },
    (_, i) => `900-${String(i % 100).padStart(2, "0")}-${String(i).padStart(6, "0")}`,
  );
  const ids = plain.map((_, i) => i);
  await pool.query(
    "drop table if exists gcm_values, pgp_values; create table gcm_values (id int primary key, v jsonb not null); create table pgp_values (id int primary key, v bytea not null)",
  );
  const figures: Record<string, number> = {};
  figures.gcmEncrypt = await timed("client AES-256-GCM: encrypt + insert", async () => {
    for (let at = 0; at < values; at += BATCH) {
      const envelopes = plain
        .slice(at, at + BATCH)
        .map((v) => JSON.stringify(encryptText(keyring.active, "/ssn", JSON.stringify(v))));
      await pool.query("insert into gcm_values select * from unnest($1::int[], $2::jsonb[])", [
        ids.slice(at, at + BATCH),
        envelopes,
      ]);
    }
  });
  figures.gcmDecrypt = await timed("client AES-256-GCM: select + decrypt", async () => {
    const { rows } = await pool.query("select v from gcm_values");
    let n = 0;
    for (const row of rows) n += decryptText(keyring, "/ssn", row.v as Envelope).length;
    if (n === 0) throw new Error("nothing decrypted");
  });
  for (const [name, options] of [
    ["pgcrypto default S2K", ""],
    ["pgcrypto s2k-mode=1", "s2k-mode=1, cipher-algo=aes256"],
  ] as const) {
    await pool.query("truncate pgp_values");
    figures[`${name} encrypt`] = await timed(`${name}: encrypt in the server (insert)`, async () => {
      for (let at = 0; at < values; at += BATCH)
        await pool.query(
          "insert into pgp_values select i, pgp_sym_encrypt(v, $3, $4) from unnest($1::int[], $2::text[]) as u(i, v)",
          [ids.slice(at, at + BATCH), plain.slice(at, at + BATCH), passphrase, options],
        );
    });
    figures[`${name} decrypt`] = await timed(`${name}: decrypt in the server (select)`, async () => {
      const { rows } = await pool.query("select pgp_sym_decrypt(v, $1, $2) as v from pgp_values", [
        passphrase,
        options,
      ]);
      if (rows.length !== values) throw new Error("not every value decrypted");
    });
  }
  console.log(
    `ratios: pgcrypto default / GCM encrypt ${(figures["pgcrypto default S2K encrypt"]! / figures.gcmEncrypt!).toFixed(1)}x, decrypt ${(figures["pgcrypto default S2K decrypt"]! / figures.gcmDecrypt!).toFixed(1)}x; pgcrypto s2k-mode=1 / GCM encrypt ${(figures["pgcrypto s2k-mode=1 encrypt"]! / figures.gcmEncrypt!).toFixed(1)}x, decrypt ${(figures["pgcrypto s2k-mode=1 decrypt"]! / figures.gcmDecrypt!).toFixed(1)}x`,
  );

  if (docs > 0) {
    const generated = await generateDocuments({ outDir: work, count: docs });
    const times = { plain: [] as number[], protected: [] as number[] };
    for (let round = 1; round <= rounds; round++) {
      for (const kind of ["plain", "protected"] as const) {
        await pool.query("drop table if exists docs_plain, docs_protected");
        const started = performance.now();
        const result = await importDocuments({
          pool,
          from: `ndjson:${generated.ndjsonPath}`,
          table: `docs_${kind}`,
          key: "/k_number",
          jobs: 2,
          ...(kind === "protected"
            ? {
                keyring,
                encryptedPaths: ["/contact", "/address_1"],
                blindIndexPaths: ["/contact"],
                integrity: true,
              }
            : {}),
        });
        const ms = performance.now() - started;
        if (result.recordsLoaded !== docs)
          throw new Error(`${kind}: loaded ${result.recordsLoaded} of ${docs}`);
        times[kind].push(ms);
        console.log(
          `import ${kind} round ${round}: ${Math.round(ms)} ms (${Math.round(docs / (ms / 1000)).toLocaleString("en-US")} docs/s)`,
        );
      }
    }
    const best = (list: number[]) => Math.min(...list);
    console.log(
      `import: protected (2 encrypted paths + blind index + MACs) / plain = ${(best(times.protected) / best(times.plain)).toFixed(2)}x (best of ${rounds}: ${Math.round(best(times.protected))} vs ${Math.round(best(times.plain))} ms)`,
    );
  }
  console.log(
    `load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await pool.end();
  rmSync(work, { recursive: true, force: true });
  if (instance) await destroyLocalInstance(instance);
}
