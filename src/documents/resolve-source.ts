import { tooDeepReason, valueExceedsDepth } from "./json-depth.ts";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import type { EmptyAs } from "../sources/csv/csv-source.ts";
import { ndjsonSource } from "../sources/ndjson/ndjson-source.ts";
import { parseSourceSpec, type SourceKind, type SourceSpec } from "../sources/source-spec.ts";
import { parsePointer } from "./json-pointer.ts";
import type { DocumentSource, SourceItem } from "./source-record.ts";

/** Where documents come from: a spec ("ndjson:data.ndjson"), a ready source, or plain objects. */
export type DocumentInput = string | SourceSpec | DocumentSource | AsyncIterable<unknown> | Iterable<unknown>;

export interface ResolvedSource {
  source: DocumentSource;
  kind: SourceKind | "iterable";
  /** Can be read more than once (files can; a caller's iterable cannot). */
  rereadable: boolean;
  /** Removes temporary files (a spilled iterable). */
  cleanup(): Promise<void>;
}

function isDocumentSource(input: unknown): input is DocumentSource {
  return (
    typeof (input as DocumentSource)?.read === "function" &&
    typeof (input as DocumentSource).label === "string"
  );
}

function isSpec(input: unknown): input is SourceSpec {
  return typeof (input as SourceSpec)?.kind === "string" && typeof (input as SourceSpec).path === "string";
}

export async function resolveDocumentSource(
  input: DocumentInput,
  options: {
    records?: string;
    delimiter?: string;
    encoding?: string;
    emptyAs?: EmptyAs;
    label?: string;
  },
): Promise<ResolvedSource> {
  const none = async () => undefined;
  if (isDocumentSource(input)) return { source: input, kind: "iterable", rereadable: true, cleanup: none };
  if (typeof input === "string" || isSpec(input)) {
    const spec = typeof input === "string" ? parseSourceSpec(input) : input;
    const recordsPointer = options.records ? parsePointer(options.records) : undefined;
    const label = spec.spec;
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(spec.path);
    } catch (error) {
      throw new UsageError(`cannot read ${spec.spec}: ${(error as Error).message}`);
    }
    // the JSON and CSV readers (stream-json, csv-parse) load when used: every CLI start is shorter
    switch (spec.kind) {
      case "json": {
        const { jsonDirSource } = await import("../sources/json/json-dir-source.ts");
        const { jsonFileSource } = await import("../sources/json/json-file-source.ts");
        return {
          source: info.isDirectory()
            ? jsonDirSource(spec.path, {
                ...(recordsPointer ? { recordsPointer } : {}),
                label,
              })
            : jsonFileSource(spec.path, {
                ...(recordsPointer ? { recordsPointer } : {}),
                label,
              }),
          kind: "json",
          rereadable: true,
          cleanup: none,
        };
      }
      case "ndjson":
        if (info.isDirectory()) throw new UsageError(`${spec.spec} is a directory; ndjson: takes one file`);
        return {
          source: ndjsonSource(spec.path, { label }),
          kind: "ndjson",
          rereadable: true,
          cleanup: none,
        };
      case "csv": {
        if (info.isDirectory()) throw new UsageError(`${spec.spec} is a directory; csv: takes one file`);
        const { csvSource } = await import("../sources/csv/csv-source.ts");
        return {
          source: csvSource(spec.path, {
            label,
            ...(options.delimiter ? { delimiter: options.delimiter } : {}),
            ...(options.encoding ? { encoding: options.encoding } : {}),
            ...(options.emptyAs ? { emptyAs: options.emptyAs } : {}),
          }),
          kind: "csv",
          rereadable: true,
          cleanup: none,
        };
      }
      default:
        throw new UsageError(`${spec.spec} is not a document source; use json:, ndjson: or csv:`);
    }
  }
  if (
    typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function" ||
    typeof (input as Iterable<unknown>)[Symbol.iterator] === "function"
  ) {
    return {
      source: iterableSource(input as AsyncIterable<unknown>, options.label ?? "iterable"),
      kind: "iterable",
      rereadable: false,
      cleanup: none,
    };
  }
  throw new UsageError(
    "importDocuments: `from` must be a source spec, a DocumentSource or an iterable of objects",
  );
}

/** Plain objects from a caller (a backfill, a test): one pass, locations "label#17". */
export function iterableSource(
  input: AsyncIterable<unknown> | Iterable<unknown>,
  label: string,
): DocumentSource {
  let used = false;
  return {
    label,
    defaultTable: "documents",
    read: async function* () {
      if (used) throw new Error(`${label} can be read only once`);
      used = true;
      let index = 0;
      for await (const value of input as AsyncIterable<unknown>) {
        index++;
        const location = `${label}#${index}`;
        let text: string | undefined;
        // JSON.stringify recurses: a value nested too deep is reported, not a stack overflow
        if (valueExceedsDepth(value)) {
          yield problem(label, location, `record is ${tooDeepReason()}`);
          continue;
        }
        try {
          text = JSON.stringify(value);
        } catch (error) {
          yield problem(label, location, `record cannot be serialized as JSON: ${(error as Error).message}`);
          continue;
        }
        if (text === undefined) {
          yield problem(label, location, `record is ${typeof value}, not a JSON value`);
          continue;
        }
        const exact = text;
        yield {
          kind: "record",
          value: JSON.parse(exact),
          text: exact,
          file: label,
          location,
          raw: () => Buffer.from(exact, "utf8"),
          rawFormat: "json",
        };
      }
    },
  };
}

function problem(file: string, location: string, reason: string): SourceItem {
  return {
    kind: "problem",
    file,
    location,
    reason,
    raw: () => Buffer.from(reason, "utf8"),
    rawFormat: "json",
    records: 1,
  };
}

/**
 * A one-pass source read twice (typed tables scan before they load): its records are written to a
 * temporary NDJSON file first, streamed, and read back from there. Locations keep the source's label.
 */
export async function spillToFile(resolved: ResolvedSource): Promise<ResolvedSource> {
  const dir = await mkdtemp(join(tmpdir(), "pgshift-spill-"));
  const path = join(dir, "records.ndjson");
  const out = createWriteStream(path);
  const label = resolved.source.label;
  // problems keep their place: a blank line (skipped, but counted) stands in for each
  const problems: SourceItem[] = [];
  try {
    for await (const item of resolved.source.read()) {
      if (item.kind === "problem") problems.push(item);
      const line = item.kind === "record" ? (item.text ?? JSON.stringify(item.value)) : "";
      if (!out.write(`${line}\n`)) await once(out, "drain");
    }
    out.end();
    await once(out, "finish");
  } catch (error) {
    out.destroy();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const inner = ndjsonSource(path, { label });
  return {
    source: {
      label,
      defaultTable: resolved.source.defaultTable,
      read: async function* (progress) {
        let nextProblem = 0;
        for await (const item of inner.read(progress)) {
          const line = Number(item.location.slice(item.location.lastIndexOf(":") + 1));
          while (nextProblem < problems.length && problemIndex(problems[nextProblem]!) < line)
            yield problems[nextProblem++]!;
          yield {
            ...item,
            file: label,
            location: `${label}#${line}`,
            rawFormat: "json",
          };
        }
        while (nextProblem < problems.length) yield problems[nextProblem++]!;
      },
    },
    kind: resolved.kind,
    rereadable: true,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

function problemIndex(item: SourceItem): number {
  return Number(item.location.slice(item.location.lastIndexOf("#") + 1));
}
