import { UsageError } from "../errors.ts";
import { getAtPointer, parsePointer } from "../documents/json-pointer.ts";

/** One API endpoint mirrored into one table: where it lives on the API and what identifies a record. */
export interface MirrorEndpoint {
  /** Short name: the cache subdirectory, the table and the freshness row ("510k"). */
  name: string;
  /** Path under the API's base URL, without the ".json" suffix ("device/510k"). */
  path: string;
  /** JSON pointers of the natural key, in order ("/k_number"; pma: "/pma_number", "/supplement_number"). */
  key: readonly string[];
  /** How long a pulled copy counts as fresh, in seconds (default one day). */
  ttlSeconds?: number;
  /** Text paths worth a trigram index ("/device_name"). */
  trgm?: readonly string[];
}

export const DEFAULT_TTL_SECONDS = 86_400;

/** The seven openFDA device endpoints with their natural keys (openFDA's own documentation). */
export const OPENFDA_DEVICE_ENDPOINTS: readonly MirrorEndpoint[] = [
  { name: "510k", path: "device/510k", key: ["/k_number"], ttlSeconds: 7 * 86_400, trgm: ["/device_name"] },
  {
    name: "classification",
    path: "device/classification",
    key: ["/product_code"],
    ttlSeconds: 30 * 86_400,
    trgm: ["/device_name"],
  },
  { name: "event", path: "device/event", key: ["/mdr_report_key"], ttlSeconds: 86_400 },
  {
    name: "recall",
    path: "device/recall",
    key: ["/product_res_number"],
    ttlSeconds: 86_400,
    trgm: ["/reason_for_recall"],
  },
  {
    name: "enforcement",
    path: "device/enforcement",
    key: ["/recall_number", "/product_type"],
    ttlSeconds: 86_400,
    trgm: ["/reason_for_recall"],
  },
  {
    name: "pma",
    path: "device/pma",
    key: ["/pma_number", "/supplement_number"],
    ttlSeconds: 7 * 86_400,
    trgm: ["/trade_name"],
  },
  {
    name: "udi",
    path: "device/udi",
    key: ["/public_device_record_key"],
    ttlSeconds: 7 * 86_400,
    trgm: ["/brand_name"],
  },
];

/** The endpoint named `name` among `endpoints`, or a usage error listing the known names. */
export function findEndpoint(name: string, endpoints: readonly MirrorEndpoint[] = OPENFDA_DEVICE_ENDPOINTS) {
  const found = endpoints.find((e) => e.name === name || e.path === name);
  if (!found)
    throw new UsageError(`unknown endpoint "${name}"; known: ${endpoints.map((e) => e.name).join(", ")}`);
  return found;
}

/** A record's key values (strings; "" for an absent supplement_number), or undefined when a part is missing. */
export function recordKey(endpoint: MirrorEndpoint, record: unknown): string[] | undefined {
  const values: string[] = [];
  for (const pointer of endpoint.key) {
    let value = getAtPointer(record, parsePointer(pointer));
    if (value === undefined || value === null) {
      // pma originals carry "" as supplement_number; a missing trailing part reads as that
      if (values.length > 0) value = "";
      else return undefined;
    }
    if (typeof value === "object") return undefined;
    values.push(String(value));
  }
  return values;
}

/** One string for a key (the cache index and the metrics use it): the value, or JSON of a composite key. */
export function keyString(key: string | readonly string[]): string {
  if (typeof key === "string") return key;
  return key.length === 1 ? key[0]! : JSON.stringify(key);
}

/** The key as an array of its parts, checked against the endpoint's key length. */
export function keyParts(endpoint: MirrorEndpoint, key: string | readonly string[]): string[] {
  const parts = typeof key === "string" ? [key] : [...key];
  if (parts.length !== endpoint.key.length)
    throw new UsageError(
      `endpoint ${endpoint.name} has a key of ${endpoint.key.length} part(s) (${endpoint.key.join(", ")}); got ${parts.length}`,
    );
  return parts;
}

/** The API's field name for a pointer ("/openfda/device_class" -> "openfda.device_class"). */
export function apiField(pointer: string): string {
  return parsePointer(pointer).join(".");
}
