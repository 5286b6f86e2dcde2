/**
 * Generates API-like documents shaped like a public regulatory API's device clearances (510(k)):
 * a unique `k_number`, ISO dates, applicant and address fields, a product code, a nested `openfda`
 * object with arrays. Written as NDJSON (one record per line) and as a JSON directory of paginated
 * envelopes (`{"meta": {...}, "results": [...]}`), the way an API cache keeps them.
 *
 *   node bin/run-ts.js bench/generate-documents.ts OUT_DIR [--docs 100000] [--page 100] [--seed 7]
 */

import { once } from "node:events";
import { createWriteStream, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Random } from "./lib/random.ts";

const NOUNS = [
  "Catheter",
  "Stent",
  "Infusion Pump",
  "Patient Monitor",
  "Electrode",
  "Implant",
  "Syringe",
  "Guide Wire",
  "Glucose Meter",
  "Ventilator",
  "Pulse Oximeter",
  "Endoscope",
  "Surgical Laser",
  "Suture",
  "Wound Dressing",
  "Prosthesis",
  "Infusion Set",
  "Bone Screw",
  "Hearing Aid",
  "Intraocular Lens",
  "Defibrillator",
  "Nebulizer",
  "Blood Pressure Cuff",
  "Thermometer",
  "Dialyzer",
  "Bone Plate",
  "Dental Implant",
  "Contact Lens",
];
const QUALIFIERS = [
  "Intravascular",
  "Orthopedic",
  "Ophthalmic",
  "Dental",
  "Surgical",
  "Diagnostic",
  "Powered",
  "Single-Use",
  "Pediatric",
  "Cardiac",
  "Neurological",
  "Radiological",
  "General Hospital",
  "Gastroenterology",
  "Urological",
];
/** Syllables of generated device names; the queries scenario builds its search terms from them. */
export const SYLLABLES = [
  "na",
  "ro",
  "vi",
  "tex",
  "lo",
  "mar",
  "quin",
  "zor",
  "pel",
  "dra",
  "sy",
  "kon",
  "fle",
  "bri",
];
const COMPANIES = [
  "Medtronic",
  "Boston Scientific",
  "Abbott",
  "Stryker",
  "Becton Dickinson",
  "Baxter",
  "Olympus",
  "Zimmer",
  "Smith & Nephew",
  "Philips",
  "Siemens Healthineers",
  "GE Healthcare",
  "B. Braun",
  "Terumo",
  "Cook Medical",
  "Fresenius",
  "Dräger",
  "Össur",
  "Nipro",
  "Mindray",
];
const SUFFIXES = ["Inc.", "LLC", "Corporation", "GmbH", "Ltd.", "AG", "Co., Ltd."];
const CITIES: [string, string, string][] = [
  ["Minneapolis", "MN", "US"],
  ["Marlborough", "MA", "US"],
  ["Chicago", "IL", "US"],
  ["Kalamazoo", "MI", "US"],
  ["Franklin Lakes", "NJ", "US"],
  ["Tokyo", "", "JP"],
  ["Lübeck", "", "DE"],
  ["Reykjavík", "", "IS"],
  ["Warsaw", "IN", "US"],
  ["Eindhoven", "", "NL"],
  ["Shenzhen", "", "CN"],
  ["Melsungen", "", "DE"],
];
const COMMITTEES: [string, string][] = [
  ["CV", "Cardiovascular"],
  ["OR", "Orthopedic"],
  ["OP", "Ophthalmic"],
  ["DE", "Dental"],
  ["SU", "General, Plastic Surgery"],
  ["NE", "Neurology"],
  ["RA", "Radiology"],
  ["GU", "Gastroenterology, Urology"],
  ["HO", "General Hospital"],
  ["AN", "Anesthesiology"],
];
const CLEARANCE = ["Traditional", "Traditional", "Traditional", "Special", "Abbreviated"];
const DECISIONS: [string, string][] = [
  ["SESE", "Substantially Equivalent"],
  ["SESE", "Substantially Equivalent"],
  ["SESE", "Substantially Equivalent"],
  ["SESK", "Substantially Equivalent - Kit"],
  ["SESD", "Substantially Equivalent with Drug"],
];

/** Number of distinct product codes: a containment query on one code selects about docs / PRODUCT_CODES. */
export const PRODUCT_CODES = 2000;

export function productCode(index: number): string {
  const a = String.fromCharCode(65 + (index % 26));
  const b = String.fromCharCode(65 + (Math.floor(index / 26) % 26));
  const c = String.fromCharCode(65 + (Math.floor(index / 676) % 26));
  return `${c}${b}${a}`;
}

export function kNumber(index: number): string {
  return `K${String(100_000 + index)}`;
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export type Document = Record<string, unknown>;

/** Document `index` (0-based) of the deterministic collection. */
export function makeDocument(random: Random, index: number): Document {
  const received = Date.UTC(1996, 0, 1) + Math.floor(random.next() * 28 * 365 * 86_400_000);
  const decided = received + random.int(20, 400) * 86_400_000;
  const [city, state, country] = random.pick(CITIES);
  const [committee, committeeName] = random.pick(COMMITTEES);
  const [decisionCode, decision] = random.pick(DECISIONS);
  const codeIndex = random.int(0, PRODUCT_CODES - 1);
  const brand = `${random.pick(SYLLABLES)}${random.pick(SYLLABLES)}${random.pick(SYLLABLES)}`;
  const deviceName = `${brand.charAt(0).toUpperCase()}${brand.slice(1)} ${random.pick(QUALIFIERS)} ${random.pick(NOUNS)}`;
  const applicant = `${random.pick(COMPANIES)} ${random.pick(SUFFIXES)}`;
  const registrations = Array.from({ length: random.int(0, 3) }, () =>
    String(random.int(1_000_000, 3_999_999_999)),
  );
  return {
    k_number: kNumber(index),
    decision_date: isoDate(decided),
    date_received: isoDate(received),
    decision_code: decisionCode,
    decision_description: decision,
    applicant,
    contact: `${random.pick(["Jane", "John", "Amira", "Kenji", "Olga", "Pedro"])} ${random.pick(["Doe", "Smith", "Tanaka", "Novak", "García"])}`,
    address_1: `${random.int(1, 9999)} ${random.pick(["Main", "Oak", "Lake", "Industrial"])} ${random.pick(["St", "Ave", "Blvd", "Pkwy"])}`,
    address_2: random.chance(0.3) ? `Suite ${random.int(100, 999)}` : "",
    city,
    state,
    zip_code: String(random.int(10_000, 99_999)),
    country_code: country,
    device_name: deviceName,
    product_code: productCode(codeIndex),
    advisory_committee: committee,
    advisory_committee_description: committeeName,
    review_advisory_committee: committee,
    clearance_type: random.pick(CLEARANCE),
    third_party_flag: random.chance(0.1) ? "Y" : "N",
    expedited_review_flag: random.chance(0.02) ? "Y" : "",
    statement_or_summary: random.chance(0.8) ? "Summary" : "Statement",
    openfda: {
      device_name: deviceName,
      medical_specialty_description: committeeName,
      regulation_number: `${random.int(862, 892)}.${random.int(1000, 6000)}`,
      device_class: String((codeIndex % 3) + 1),
      registration_number: registrations,
      fei_number: registrations.map((r) => `${r}0`),
    },
  };
}

export interface GeneratedDocuments {
  count: number;
  ndjsonPath: string;
  ndjsonBytes: number;
  jsonDir: string;
  jsonFiles: number;
  pageSize: number;
}

export interface GenerateDocumentsOptions {
  outDir: string;
  count: number;
  pageSize?: number;
  seed?: number;
}

/** Writes `docs.ndjson` and `docs-json/page-NNNNNN.json` (envelopes with the records at /results). */
export async function generateDocuments(options: GenerateDocumentsOptions): Promise<GeneratedDocuments> {
  const outDir = resolve(options.outDir);
  const pageSize = options.pageSize ?? 100;
  const jsonDir = join(outDir, "docs-json");
  const ndjsonPath = join(outDir, "docs.ndjson");
  rmSync(jsonDir, { recursive: true, force: true });
  mkdirSync(jsonDir, { recursive: true });
  const random = new Random(options.seed ?? 7);
  const ndjson = createWriteStream(ndjsonPath);
  let page: Document[] = [];
  let files = 0;
  const flushPage = (skip: number) => {
    const envelope = {
      meta: {
        disclaimer: "generated benchmark data shaped like a public API response",
        last_updated: "2026-11-01",
        results: { skip, limit: pageSize, total: options.count },
      },
      results: page,
    };
    writeFileSync(
      join(jsonDir, `page-${String(files).padStart(6, "0")}.json`),
      JSON.stringify(envelope, null, 1),
    );
    files++;
    page = [];
  };
  let buffer = "";
  for (let i = 0; i < options.count; i++) {
    const doc = makeDocument(random, i);
    buffer += `${JSON.stringify(doc)}\n`;
    page.push(doc);
    if (page.length === pageSize) flushPage(i + 1 - pageSize);
    if (buffer.length > 1 << 20) {
      if (!ndjson.write(buffer)) await once(ndjson, "drain");
      buffer = "";
    }
  }
  if (page.length > 0) flushPage(options.count - page.length);
  ndjson.end(buffer);
  await once(ndjson, "finish");
  return {
    count: options.count,
    ndjsonPath,
    ndjsonBytes: statSync(ndjsonPath).size,
    jsonDir,
    jsonFiles: files,
    pageSize,
  };
}

const EVENT_KINDS = ["click", "view", "scroll", "purchase", "signup", "logout"];

/** Key of small document `index` (0-based): unique, fixed width. */
export function eventId(index: number): string {
  return `E${String(index).padStart(9, "0")}`;
}

export interface GeneratedSmallDocuments {
  count: number;
  ndjsonPath: string;
  ndjsonBytes: number;
}

/**
 * Small event documents of about 100 bytes each, keyed by `id` (issue 15's shape, where per-document
 * overhead dominates): written as NDJSON to `path`.
 */
export async function generateSmallDocuments(options: {
  path: string;
  count: number;
  seed?: number;
}): Promise<GeneratedSmallDocuments> {
  const path = resolve(options.path);
  const random = new Random(options.seed ?? 11);
  const out = createWriteStream(path);
  const base = Date.UTC(2024, 0, 1);
  let buffer = "";
  for (let i = 0; i < options.count; i++) {
    const doc = {
      id: eventId(i),
      ts: new Date(base + Math.floor(random.next() * 365 * 86_400_000)).toISOString().slice(0, 19) + "Z",
      kind: random.pick(EVENT_KINDS),
      user: random.int(1, 99_999),
      score: Math.round(random.next() * 1000) / 1000,
      ok: random.chance(0.9),
    };
    buffer += `${JSON.stringify(doc)}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, "drain");
      buffer = "";
    }
  }
  out.end(buffer);
  await once(out, "finish");
  return { count: options.count, ndjsonPath: path, ndjsonBytes: statSync(path).size };
}

async function main(argv: string[]): Promise<void> {
  let out: string | undefined;
  let count = 100_000;
  let pageSize = 100;
  let seed = 7;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--docs") count = Number(argv[++i]);
    else if (argv[i] === "--page") pageSize = Number(argv[++i]);
    else if (argv[i] === "--seed") seed = Number(argv[++i]);
    else out = argv[i];
  }
  if (!out || !Number.isInteger(count) || count <= 0) {
    process.stderr.write(
      "usage: node bin/run-ts.js bench/generate-documents.ts OUT_DIR [--docs N] [--page N] [--seed N]\n",
    );
    process.exitCode = 2;
    return;
  }
  process.stdout.write(
    `${JSON.stringify(await generateDocuments({ outDir: out, count, pageSize, seed }), null, 2)}\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  await main(process.argv.slice(2));
