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

/** Deep equality on canonical JSON (key order, undefined members and Date/string forms do not matter). */
export function canonicalEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
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
