/**
 * Canonical JSON: object keys sorted, `undefined` members dropped, Dates as ISO strings, bigint as
 * decimal strings, Maps as sorted entry objects and Sets as arrays. Two values are "equal" for a
 * cutover when their canonical JSON texts are equal.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value)) ?? "null";
}

/** The JSON-shaped value canonicalJson serializes (useful for diffs and for storing as jsonb). */
export function canonicalValue(value: unknown, seen: Set<unknown> = new Set()): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    case "function":
    case "symbol":
      return null;
  }
  if (value instanceof Date) return value.toISOString();
  if (seen.has(value)) throw new TypeError("cannot compare a value with a reference cycle");
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => canonicalValue(v, seen));
    if (value instanceof Set) return [...value].map((v) => canonicalValue(v, seen));
    if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
    const entries =
      value instanceof Map
        ? [...value.entries()].map(([k, v]) => [String(k), v] as const)
        : Object.entries(value as Record<string, unknown>);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (v === undefined) continue;
      out[k] = canonicalValue(v, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * Deep equality on canonical JSON (key order, undefined members and Date/string forms do not matter).
 * Equal plain data (objects, arrays, strings, finite numbers, booleans, null: what most reads return) is
 * recognized in place, without building two canonical copies and their texts (~10x cheaper per shadow
 * comparison); anything else, and every difference, is decided on the canonical JSON texts.
 */
export function canonicalEqual(a: unknown, b: unknown): boolean {
  return plainDataEqual(a, b, 0) || canonicalJson(a) === canonicalJson(b);
}

/** Beyond this depth the fast path gives up (and canonical JSON refuses reference cycles). */
const plainDataMaxDepth = 64;

/**
 * True only when both values are the same plain data, so their canonical JSON texts are equal; false
 * when they differ or hold anything canonical JSON normalizes (undefined members, Dates, Maps, bigint,
 * non-finite numbers, class instances), which the caller then compares the slow, exact way.
 */
function plainDataEqual(a: unknown, b: unknown, depth: number): boolean {
  switch (typeof a) {
    case "string":
    case "boolean":
      return a === b;
    case "number":
      return a === b && Number.isFinite(a);
    case "object":
      break;
    default:
      return false;
  }
  if (a === null) return b === null;
  if (typeof b !== "object" || b === null || depth >= plainDataMaxDepth) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!plainDataEqual(a[i], b[i], depth + 1)) return false;
    return true;
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  for (const key of keys) {
    // Same count of own enumerable keys, each of a's among b's: the same key sets.
    if (!Object.prototype.propertyIsEnumerable.call(b, key)) return false;
    if (!plainDataEqual(left[key], right[key], depth + 1)) return false;
  }
  return true;
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

export interface ValueDiff {
  /** JSON pointer (RFC 6901) of the differing member, "" for the whole value. */
  path: string;
  legacy: unknown;
  next: unknown;
}

function pointerPart(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** The differing members of two values, as JSON pointers with both sides, at most `limit` of them. */
export function diffValues(legacy: unknown, next: unknown, limit = 20): ValueDiff[] {
  const out: ValueDiff[] = [];
  walk(canonicalValue(legacy), canonicalValue(next), "", out, limit);
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: ValueDiff[], limit: number): void {
  if (out.length >= limit) return;
  const aObject = typeof a === "object" && a !== null;
  const bObject = typeof b === "object" && b !== null;
  if (aObject && bObject && Array.isArray(a) === Array.isArray(b)) {
    const keys = Array.isArray(a)
      ? Array.from({ length: Math.max(a.length, (b as unknown[]).length) }, (_, i) => String(i))
      : [...new Set([...Object.keys(a), ...Object.keys(b as object)])].sort();
    for (const key of keys) {
      const av = (a as Record<string, unknown>)[key];
      const bv = (b as Record<string, unknown>)[key];
      walk(av, bv, `${path}/${pointerPart(key)}`, out, limit);
    }
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b))
    out.push({
      path,
      legacy: a === undefined ? "(absent)" : a,
      next: b === undefined ? "(absent)" : b,
    });
}
