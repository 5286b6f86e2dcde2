import { readFileSync, createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import pg from "pg";
import { generateDocuments } from "../generate-documents.ts";
import { refreshDataset, singleTableDataset } from "../../src/refresh/index.ts";

const pw = readFileSync("/tmp/rf/.pgshift/local/default/password", "utf8").trim();
const admin = `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:34191/postgres`;
const n = Number(process.argv[2] ?? 100000);
async function writeDelta(from: string, to: string, offset: number) {
  const out = createWriteStream(to);
  let i = 0;
  for await (const line of createInterface({ input: createReadStream(from) })) {
    if (line && i++ % 100 === offset) {
      const r = JSON.parse(line); r.city = `Changed ${offset} ${i}`;
      if (!out.write(`${JSON.stringify(r)}\n`)) await once(out, "drain");
    }
  }
  out.end(); await once(out, "finish");
}
const docs = await generateDocuments({ outDir: "/tmp/rf/docs", count: n });
await writeDelta(docs.ndjsonPath, "/tmp/rf/d0.ndjson", 0);
await writeDelta(docs.ndjsonPath, "/tmp/rf/d1.ndjson", 33);
const a = new pg.Client(admin); await a.connect();
await a.query("drop database if exists rfb"); await a.query("create database rfb"); await a.end();
const pool = new pg.Pool({ connectionString: admin.replace(/\/postgres$/, "/rfb"), max: 28 });
const ds = (from: string) => singleTableDataset({ schema: "bench", table: "device", from, key: "/k_number", gin: true });
const steps = (process.argv[3] ?? "load,full,d0,d1,d0").split(",");
for (const s of steps) {
  const t = performance.now();
  const r = await refreshDataset({ pool, dataset: ds(s === "d0" ? "ndjson:/tmp/rf/d0.ndjson" : s === "d1" ? "ndjson:/tmp/rf/d1.ndjson" : `ndjson:${docs.ndjsonPath}`), delta: s.startsWith("d"), keep: 1, ...(process.env.PROBE ? { probe: 20 } : {}) });
  console.log(s, Math.round(performance.now() - t), JSON.stringify(r.stepMs), r.tables[0]?.recycledFrom ?? "");
}
await pool.end();
