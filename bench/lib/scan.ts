import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export type Doc = Record<string, unknown>;

/** Records of one cached API file: an envelope's `results`, an array, or a single record. */
function recordsOf(value: unknown): Doc[] {
  if (Array.isArray(value)) return value as Doc[];
  if (value && typeof value === "object" && Array.isArray((value as { results?: unknown }).results)) {
    return (value as { results: Doc[] }).results;
  }
  return value && typeof value === "object" ? [value as Doc] : [];
}

/**
 * What a tool reading its JSON cache does for one query: read and parse every file, keep the matches.
 * Files are read one after another (the cache tools this stands for do the same).
 */
export async function scanJsonDirectory(dir: string, predicate: (doc: Doc) => boolean): Promise<Doc[]> {
  const matches: Doc[] = [];
  const files = (await readdir(dir)).filter((name) => name.endsWith(".json")).sort();
  for (const file of files) {
    const parsed = JSON.parse(await readFile(join(dir, file), "utf8")) as unknown;
    for (const doc of recordsOf(parsed)) if (predicate(doc)) matches.push(doc);
  }
  return matches;
}

/** `a @> b` for JSON values, as PostgreSQL's jsonb containment defines it (arrays: every element of b in a). */
export function jsonContains(a: unknown, b: unknown): boolean {
  if (Array.isArray(b)) {
    if (!Array.isArray(a)) return false;
    return b.every((item) => a.some((candidate) => jsonContains(candidate, item)));
  }
  if (b !== null && typeof b === "object") {
    if (a === null || typeof a !== "object" || Array.isArray(a)) return false;
    return Object.entries(b as Doc).every(
      ([key, value]) => key in (a as Doc) && jsonContains((a as Doc)[key], value),
    );
  }
  return a === b;
}
