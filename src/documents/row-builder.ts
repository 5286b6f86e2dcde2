import * as crypto from "node:crypto";
import type { CopyValue } from "../pg/copy-writer.ts";
import type { ExtraColumnSpec, KeySpec } from "./document-table.ts";
import { formatPointer, getAtPointer } from "./json-pointer.ts";
import { findJsonbProblem, mayHaveJsonbProblem } from "./jsonb-check.ts";
import type { SourceRecord } from "./source-record.ts";
import { forEachField, pathKey, type TypedColumn } from "./typed-inference.ts";
import { convertValue } from "./value-conversion.ts";

/**
 * sha256 hex of a document's JSON text (content_hash). crypto.hash (Node >= 20.12) is a one-shot
 * call about 2.5x faster than a Hash object per record, which shows at 100k records.
 */
export const contentHash: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "hex")
    : (text) => crypto.createHash("sha256").update(text).digest("hex");

/** A record turned into a row, or the reason it cannot be one (with the column to blame, if any). */
export type BuiltRow =
  { ok: true; values: CopyValue[]; key?: string } | { ok: false; reason: string; column?: string };

function describeKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? "a string" : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Key column values (converted) and the duplicate-detection key, or why the record has no usable key. */
function keyValues(
  record: Record<string, unknown>,
  keys: readonly KeySpec[],
  location: string,
): { values: CopyValue[]; key: string } | { reason: string; column: string } {
  const values: CopyValue[] = [];
  for (const spec of keys) {
    const raw = getAtPointer(record, spec.path);
    if (raw === undefined || raw === null || raw === "")
      return {
        reason: `${location}: record has no key at ${spec.pointer}`,
        column: spec.column,
      };
    if (typeof raw !== "string" && typeof raw !== "number")
      return {
        reason: `${location}: key at ${spec.pointer} is ${describeKind(raw)}; keys must be strings or numbers`,
        column: spec.column,
      };
    const converted = convertValue(raw, spec.type);
    if (!converted.ok)
      return {
        reason: `${location}: key at ${spec.pointer}: ${converted.reason}`,
        column: spec.column,
      };
    values.push(converted.value);
  }
  return {
    values,
    key: values.length === 1 ? String(values[0]) : values.map(String).join("\u0000"),
  };
}

/** Rows of a document table: keys, doc, extra columns, source_file, content_hash. */
export class DocumentRowBuilder {
  constructor(
    private readonly keys: readonly KeySpec[],
    private readonly extras: readonly ExtraColumnSpec[],
  ) {}

  build(record: SourceRecord): BuiltRow {
    const value = record.value;
    if (!isPlainObject(value))
      return {
        ok: false,
        reason: `${record.location}: record is ${describeKind(value)}, not a JSON object`,
      };
    const keyed = keyValues(value, this.keys, record.location);
    if ("reason" in keyed) return { ok: false, reason: keyed.reason, column: keyed.column };
    const text = record.text;
    if (text === undefined || mayHaveJsonbProblem(text)) {
      const problem = findJsonbProblem(value);
      if (problem)
        return {
          ok: false,
          reason: `${record.location}: ${problem.reason} at ${problem.pointer}`,
          column: "doc",
        };
    }
    // the input text is the document when the source has it (an NDJSON line): no re-serialization
    const doc = text ?? JSON.stringify(value);
    const values: CopyValue[] = [...keyed.values, doc];
    for (const extra of this.extras) {
      const converted = convertValue(getAtPointer(value, extra.path), extra.type);
      if (!converted.ok)
        return {
          ok: false,
          reason: `${record.location}: column ${extra.name} (${extra.pointer}): ${converted.reason}`,
          column: extra.name,
        };
      values.push(converted.value);
    }
    values.push(record.file, contentHash(doc));
    return this.keys.length > 0 ? { ok: true, values, key: keyed.key } : { ok: true, values };
  }
}

/** Rows of a typed table: one value per inferred column, then _source_file, _content_hash. */
export class TypedRowBuilder {
  private readonly byPath = new Map<string, number>();

  constructor(
    private readonly columns: readonly TypedColumn[],
    private readonly keys: readonly KeySpec[],
    private readonly flatten: boolean,
    private readonly csv: boolean,
  ) {
    columns.forEach((c, i) => this.byPath.set(pathKey(c.path), i));
  }

  build(record: SourceRecord): BuiltRow {
    const value = record.value;
    if (!isPlainObject(value))
      return {
        ok: false,
        reason: `${record.location}: record is ${describeKind(value)}, not a JSON object`,
      };
    const values: CopyValue[] = new Array(this.columns.length).fill(null);
    let failure: BuiltRow | undefined;
    forEachField(value, this.flatten, (path, field) => {
      if (failure) return;
      const index = this.byPath.get(pathKey(path));
      if (index === undefined) {
        failure = {
          ok: false,
          reason: `${record.location}: field ${formatPointer(path)} was not there when the types were scanned (did the source change during the import?)`,
        };
        return;
      }
      const column = this.columns[index]!;
      const input = this.csv && field === "" ? null : field;
      const converted = convertValue(input, column.type);
      if (!converted.ok) {
        failure = {
          ok: false,
          reason: `${record.location}: column ${column.name} (${formatPointer(path)}): ${converted.reason}`,
          column: column.name,
        };
        return;
      }
      values[index] = converted.value;
    });
    if (failure) return failure;
    let key: string | undefined;
    if (this.keys.length > 0) {
      const parts: string[] = [];
      for (const spec of this.keys) {
        const index = this.byPath.get(pathKey(spec.path));
        const keyValue = index === undefined ? null : values[index];
        if (keyValue === null || keyValue === undefined)
          return {
            ok: false,
            reason: `${record.location}: record has no key at ${spec.pointer}`,
            column: spec.column,
          };
        parts.push(String(keyValue));
      }
      key = parts.join("\u0000");
    }
    const text = record.text ?? JSON.stringify(value);
    values.push(record.file, contentHash(text));
    return key === undefined ? { ok: true, values } : { ok: true, values, key };
  }
}
