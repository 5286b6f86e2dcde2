import { extname } from "node:path";
import { UsageError } from "../errors.ts";

export type SourceKind = "sqlite" | "json" | "ndjson" | "csv";

export interface SourceSpec {
  kind: SourceKind;
  /** Path as given (relative paths resolve against the working directory). */
  path: string;
  /** The spec as the user wrote it, for messages and reports. */
  spec: string;
}

const PREFIXES: SourceKind[] = ["sqlite", "json", "ndjson", "csv"];

/**
 * Parses `kind:PATH`, or a bare path whose extension names the kind
 * (.db/.sqlite/.sqlite3 -> sqlite, .json -> json, .ndjson/.jsonl(.gz) -> ndjson, .csv -> csv).
 */
export function parseSourceSpec(spec: string): SourceSpec {
  const match = /^([a-z]+):(.*)$/s.exec(spec);
  if (match && PREFIXES.includes(match[1] as SourceKind)) {
    const path = match[2]!;
    if (!path) throw new UsageError(`source "${spec}" names no path; write ${match[1]}:PATH`);
    return { kind: match[1] as SourceKind, path, spec };
  }
  if (match && match[1]!.length > 1) {
    throw new UsageError(
      `unknown source kind "${match[1]}" in "${spec}"; use one of ${PREFIXES.map((p) => `${p}:PATH`).join(", ")}`,
    );
  }
  const lower = spec.toLowerCase().replace(/\.gz$/, "");
  const ext = extname(lower);
  const byExtension: Record<string, SourceKind> = {
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
  };
  const kind = byExtension[ext];
  if (!kind) {
    throw new UsageError(
      `cannot tell what kind of source "${spec}" is; prefix it with ${PREFIXES.map((p) => `${p}:`).join(", ")}`,
    );
  }
  return { kind, path: spec, spec };
}
