// Records of the seven openFDA device endpoints, generated from the real example records in fixtures/
// (openFDA's own documentation; public domain): the fixture's shape, with keys, dates, names and array
// lengths varied per record so that indexes, paging and containment queries see realistic data.
import { readFileSync } from "node:fs";

type Json = Record<string, unknown>;

const fixture = (name: string): Json =>
  JSON.parse(
    readFileSync(new URL(`./fixtures/device-${name}.examples.json`, import.meta.url), "utf8"),
  ) as Json;

/** One API record per endpoint, the fixture's sections merged as the API returns them. */
function baseRecords(): Record<string, Json> {
  const k510 = fixture("510k");
  const classification = fixture("classification");
  const enforcement = fixture("enforcement");
  const event = fixture("event");
  const pma = fixture("pma");
  const recall = fixture("recall");
  const udi = fixture("udi");
  const recallExample = ((recall.anatomy as Json).results as Json[])[0]!;
  return {
    "510k": k510.record as Json,
    classification: { ...(classification.header as Json), openfda: classification.openfda },
    enforcement: enforcement.result as Json,
    event: {
      ...(event.header as Json),
      device: event.device,
      patient: event.patient,
      mdr_text: event.mdr_text,
    },
    pma: { ...(pma.header as Json), openfda: pma.openfda },
    recall: { ...recallExample, ...(recall.record as Json) },
    udi: udi.header as Json,
  };
}

let bases: Record<string, Json> | undefined;

const CITIES = ["PORTLAND", "AUSTIN", "TEMECULA", "CENTENNIAL", "READING", "MINNEAPOLIS", "BOSTON", "IRVINE"];
const DEVICES = [
  "Stent, Coronary",
  "Catheter, Intravascular",
  "Implant, Cochlear",
  "System, Test, Infectious Mononucleosis",
  "Pump, Infusion",
  "Monitor, Glucose",
  "Screw, Bone, Cancellous",
  "Dispenser, Mercury And/Or Alloy",
];
const CLASSES = ["1", "2", "3"];

const pad = (n: number, width: number) => String(n).padStart(width, "0");
const isoDate = (i: number) =>
  new Date(Date.UTC(1990, 0, 1) + (i % 12_000) * 86_400_000).toISOString().slice(0, 10);
const compactDate = (i: number) => isoDate(i).replaceAll("-", "");

/** Short code of three letters for index `i` (product codes: "AAA".."ZZZ"). */
function productCode(i: number): string {
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return letters[Math.floor(i / 676) % 26]! + letters[Math.floor(i / 26) % 26]! + letters[i % 26]!;
}

/** The `i`-th record of `endpoint` (deterministic: the same i always gives the same record). */
export function generateRecord(endpoint: string, i: number): Json {
  bases ??= baseRecords();
  const base = structuredClone(bases[endpoint]);
  if (!base) throw new Error(`no fixture for endpoint ${endpoint}`);
  const city = CITIES[i % CITIES.length]!;
  const device = DEVICES[i % DEVICES.length]!;
  const deviceClass = CLASSES[i % CLASSES.length]!;
  const openfda = (base.openfda ?? {}) as Json;
  if (Array.isArray(openfda.registration_number))
    openfda.registration_number = openfda.registration_number.slice(
      0,
      1 + (i % openfda.registration_number.length),
    );
  if (Array.isArray(openfda.fei_number)) openfda.fei_number = openfda.fei_number.slice(0, 1 + (i % 5));
  if ("device_class" in openfda) openfda.device_class = deviceClass;
  if ("device_name" in openfda) openfda.device_name = device;
  switch (endpoint) {
    case "510k":
      return {
        ...base,
        k_number: `K${pad(i, 6)}`,
        city,
        device_name: `${device.toUpperCase()} MODEL ${i % 97}`,
        decision_date: isoDate(i + 30),
        date_received: isoDate(i),
        product_code: productCode(i % 5000),
        openfda,
      };
    case "classification":
      return {
        ...base,
        // three letters as openFDA's codes have, then a digit past the 17576 three-letter codes (keys stay unique)
        product_code: i < 17_576 ? productCode(i) : `${productCode(i)}${Math.floor(i / 17_576)}`,
        device_name: device,
        device_class: deviceClass,
        openfda,
      };
    case "enforcement":
      return {
        ...base,
        recall_number: `Z-${pad(i % 10_000, 4)}-${2000 + Math.floor(i / 10_000)}`,
        event_id: String(60_000 + Math.floor(i / 3)),
        city,
        report_date: compactDate(i),
        classification: `Class ${"I".repeat(1 + (i % 3))}`,
      };
    case "event": {
      const devices = (base.device as Json[]).map((d) => ({
        ...d,
        brand_name: `${device.toUpperCase()} ${i % 50}`,
      }));
      return {
        ...base,
        mdr_report_key: String(2_000_000 + i),
        date_received: compactDate(i),
        manufacturer_city: city,
        event_type: ["Malfunction", "Injury", "Death"][i % 3],
        device: devices,
      };
    }
    case "pma":
      return {
        ...base,
        pma_number: `P${pad(Math.floor(i / 4), 6)}`,
        // every fourth record is an original approval: its supplement_number is "" (openFDA's convention)
        supplement_number: i % 4 === 0 ? "" : `S${pad(i % 4, 3)}`,
        trade_name: `${device.toUpperCase()} SYSTEM ${i % 31}`,
        decision_date: isoDate(i + 60),
        city,
        openfda,
      };
    case "recall":
      return {
        ...base,
        product_res_number: `Z-${pad(i % 10_000, 4)}-${2010 + Math.floor(i / 10_000)}`,
        res_event_number: String(50_000 + Math.floor(i / 2)),
        city,
        event_date_terminated: isoDate(i + 90),
        openfda,
      };
    case "udi":
      return {
        ...base,
        public_device_record_key: `${pad(i, 8)}-${pad((i * 7919) % 10_000, 4)}-4b1e-9c1a-${pad(i, 12)}`,
        brand_name: `${device.split(",")[0]!.toUpperCase()} ${i % 40}`,
        version_or_model_number: String(5_000_000 + i),
      };
    default:
      throw new Error(`no generator for endpoint ${endpoint}`);
  }
}

/** Records 0..count-1 of `endpoint`. */
export function generateRecords(endpoint: string, count: number, offset = 0): Json[] {
  return Array.from({ length: count }, (_, i) => generateRecord(endpoint, offset + i));
}
