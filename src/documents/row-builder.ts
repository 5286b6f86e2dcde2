import * as crypto from "node:crypto";
import type { CopyBuffer } from "../pg/copy-buffer.ts";
import type { CopyValue } from "../pg/copy-writer.ts";
import type { ExtraColumnSpec, KeySpec } from "./document-table.ts";
import { formatPointer, getAtPointer } from "./json-pointer.ts";
import { textExceedsDepth, tooDeepReason, valueExceedsDepth } from "./json-depth.ts";
import { documentRange, exactInteger, mayBeRounded, rangeAtPointer } from "./json-ranges.ts";
import { JsonScanner } from "./json-scan.ts";
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

/** sha256 hex of a document's JSON text given as its UTF-8 bytes: the same digest as contentHash(text). */
export const contentHashBytes: (bytes: Uint8Array) => string =
  typeof crypto.hash === "function"
    ? (bytes) => crypto.hash("sha256", bytes, "hex")
    : (bytes) => crypto.createHash("sha256").update(bytes).digest("hex");

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

/**
 * The value at `path` of a parsed record, with an integer a double has rounded given back as the digits
 * of the record's JSON text (when the source has it): 9007199254740993, not ...992.
 */
function exactValueAt(
  record: Record<string, unknown>,
  path: readonly string[],
  text: string | undefined,
): unknown {
  const value = getAtPointer(record, path);
  if (!mayBeRounded(value) || text === undefined) return value;
  const raw = rawTextAt(text, path);
  return raw === undefined ? value : exactInteger(value, raw);
}

/** The JSON text of the value at `path` in a document's text, as the source wrote it. */
function rawTextAt(text: string, path: readonly string[]): string | undefined {
  const bytes = Buffer.from(text, "utf8");
  const range = rangeAtPointer(bytes, documentRange(bytes), path);
  return range ? bytes.toString("utf8", range.start, range.end) : undefined;
}

/** JSON.stringify output that may hold a rounded integer: 16+ digits in a row, or an exponent. */
const MAY_HOLD_ROUNDED = /\d{16}|\de[+-]/;

/** A converted jsonb value whose numbers may have been rounded, as the source's text at `path` instead. */
function exactJsonb(
  value: CopyValue,
  type: string,
  text: string | undefined,
  path: readonly string[],
): CopyValue {
  if (type !== "jsonb" || text === undefined || typeof value !== "string" || !MAY_HOLD_ROUNDED.test(value))
    return value;
  return rawTextAt(text, path) ?? value;
}

/** Key column values (converted) and the duplicate-detection key, or why the record has no usable key. */
function keyValues(
  record: Record<string, unknown>,
  keys: readonly KeySpec[],
  location: string,
  text: string | undefined,
): { values: CopyValue[]; key: string } | { reason: string; column: string } {
  const values: CopyValue[] = [];
  for (const spec of keys) {
    const raw = exactValueAt(record, spec.path, text);
    // an empty part of a composite key is a value (openFDA's PMA originals have supplement_number "");
    // an empty single key is a record without one
    if (raw === undefined || raw === null || (raw === "" && keys.length === 1))
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
    // before anything that recurses (JSON.stringify, the jsonb checks, PostgreSQL's parser)
    if (record.text !== undefined ? textExceedsDepth(record.text) : valueExceedsDepth(value))
      return { ok: false, reason: `${record.location}: record is ${tooDeepReason()}`, column: "doc" };
    const keyed = keyValues(value, this.keys, record.location, record.text);
    if ("reason" in keyed) return { ok: false, reason: keyed.reason, column: keyed.column };
    // the input text is the document when the source has it (an NDJSON line): no re-serialization.
    // JSON.stringify writes a NUL or an unpaired surrogate as a \u escape, so its text tells as well.
    const doc = record.text ?? JSON.stringify(value);
    if (mayHaveJsonbProblem(doc)) {
      const problem = findJsonbProblem(value);
      if (problem)
        return {
          ok: false,
          reason: `${record.location}: ${problem.reason} at ${problem.pointer}`,
          column: "doc",
        };
    }
    const values: CopyValue[] = [...keyed.values, doc];
    for (const extra of this.extras) {
      const field =
        extra.type === "jsonb"
          ? getAtPointer(value, extra.path)
          : exactValueAt(value, extra.path, record.text);
      const converted = convertValue(field, extra.type);
      if (!converted.ok)
        return {
          ok: false,
          reason: `${record.location}: column ${extra.name} (${extra.pointer}): ${converted.reason}`,
          column: extra.name,
        };
      values.push(exactJsonb(converted.value, extra.type, record.text, extra.path));
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
    if (record.text !== undefined ? textExceedsDepth(record.text) : valueExceedsDepth(value))
      return { ok: false, reason: `${record.location}: record is ${tooDeepReason()}` };
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
      // CSV: the source decided already which empty fields are NULL (--empty-as); "" is a string
      let input = field;
      // an integer beyond 2^53 from the record's own digits, as document tables take it
      if (record.text !== undefined && mayBeRounded(input) && column.type !== "jsonb")
        input = exactInteger(input, rawTextAt(record.text, path) ?? String(input));
      const converted = convertValue(input, column.type);
      if (!converted.ok) {
        failure = {
          ok: false,
          reason: `${record.location}: column ${column.name} (${formatPointer(path)}): ${converted.reason}`,
          column: column.name,
        };
        return;
      }
      // a nested value's numbers as written (JSON.stringify rounded them)
      if (
        record.text !== undefined &&
        column.type === "jsonb" &&
        typeof converted.value === "string" &&
        MAY_HOLD_ROUNDED.test(converted.value)
      )
        converted.value = rawTextAt(record.text, path) ?? converted.value;
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

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;
/** valueAt's answer when a member name on the way is written with escapes: take the exact path. */
const DECLINE = Symbol("decline");
const OPEN_OBJECT = 0x7b;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Where one pointer's value is in a document's bytes: the top-level scan finds its first segment, these the rest. */
interface PointerWalk {
  slot: number;
  /** One scanner per segment after the first (a member of an object or an element of an array). */
  rest: JsonScanner[];
}

/**
 * The fast path of DocumentRowBuilder for records given as the bytes of their JSON text (NDJSON lines):
 * one validating scan finds the key and --column values without building the document, and the row
 * carries the original bytes as the doc (PostgreSQL parses jsonb itself) and their sha256 as the content
 * hash. It appends exactly the row DocumentRowBuilder would build from JSON.parse of the same text, or
 * declines (returns undefined) and leaves the record to DocumentRowBuilder: invalid JSON, a record that
 * is not an object, a missing or unusable key, a value that does not convert, a string jsonb cannot
 * store, an escaped member name on the way to a key. Declining is never a verdict on the record.
 */
export class DocumentBytesBuilder {
  private readonly scanner: JsonScanner;
  private readonly walks: PointerWalk[];
  private readonly keyValues: CopyValue[];
  private readonly extraValues: CopyValue[];
  /** Where the value valueAt() last found is: bytes[lastFrom, lastTo). */
  private lastFrom = 0;
  private lastTo = 0;

  constructor(
    private readonly keys: readonly KeySpec[],
    private readonly extras: readonly ExtraColumnSpec[],
  ) {
    const firstSegments: string[] = [];
    this.walks = [...keys.map((k) => k.path), ...extras.map((e) => e.path)].map((path) => {
      let slot = firstSegments.indexOf(path[0]!);
      if (slot < 0) slot = firstSegments.push(path[0]!) - 1;
      const rest = path
        .slice(1)
        .map((segment) => new JsonScanner([segment], ARRAY_INDEX.test(segment) ? Number(segment) : -1));
      return { slot, rest };
    });
    this.scanner = new JsonScanner(firstSegments);
    this.keyValues = new Array<CopyValue>(keys.length);
    this.extraValues = new Array<CopyValue>(extras.length);
  }

  /**
   * Appends the row of the document bytes[start, end) to `out` (key columns, doc, extra columns,
   * source_file, content_hash, then `ordinal` when given) and returns its duplicate-detection key ("" when
   * the table has no key), or returns undefined, appending nothing, when the record needs the exact path.
   */
  append(
    bytes: Buffer,
    start: number,
    end: number,
    file: string,
    out: CopyBuffer,
    ordinal: number | undefined,
  ): string | undefined {
    const scanner = this.scanner;
    if (!scanner.scan(bytes, start, end) || scanner.first !== OPEN_OBJECT) return undefined;
    const keys = this.keys;
    let key = "";
    for (let k = 0; k < keys.length; k++) {
      const raw = this.valueAt(bytes, k, true);
      if (raw === undefined || raw === null || (raw === "" && keys.length === 1) || raw === DECLINE)
        return undefined;
      if (typeof raw !== "string" && typeof raw !== "number") return undefined;
      const converted = convertValue(raw, keys[k]!.type);
      if (!converted.ok) return undefined;
      this.keyValues[k] = converted.value;
      key = k === 0 ? String(converted.value) : `${key}\u0000${String(converted.value)}`;
    }
    for (let x = 0; x < this.extras.length; x++) {
      const type = this.extras[x]!.type;
      const raw = this.valueAt(bytes, keys.length + x, type !== "jsonb");
      if (raw === DECLINE) return undefined;
      const converted = convertValue(raw, type);
      if (!converted.ok) return undefined;
      // as exactJsonb: the value's own text when JSON.stringify may have rounded a number in it
      this.extraValues[x] =
        type === "jsonb" && typeof converted.value === "string" && MAY_HOLD_ROUNDED.test(converted.value)
          ? bytes.toString("utf8", this.lastFrom, this.lastTo)
          : converted.value;
    }
    const escapes = scanner.copyEscapes;
    out.beginRow(keys.length + 3 + this.extras.length + (ordinal === undefined ? 0 : 1));
    for (let k = 0; k < keys.length; k++) out.value(this.keyValues[k], keys[k]!.type);
    out.jsonBytes(bytes, start, end, escapes);
    for (let x = 0; x < this.extras.length; x++) out.value(this.extraValues[x], this.extras[x]!.type);
    out.value(file, "text");
    out.value(contentHashBytes(bytes.subarray(start, end)), "text");
    if (ordinal !== undefined) out.value(ordinal, "bigint");
    out.endRow();
    return key;
  }

  /**
   * The JSON value at pointer `w` of the document just scanned, as getAtPointer(JSON.parse(text)) gives
   * it (with `exact`, an integer a double would round as its digits, as exactValueAt gives it); DECLINE
   * when a member name on the way is written with escapes.
   */
  private valueAt(bytes: Buffer, w: number, exact: boolean): unknown {
    const walk = this.walks[w]!;
    if (!this.scanner.found(walk.slot)) return undefined;
    let from = this.scanner.valueStart[walk.slot]!;
    let to = this.scanner.valueEnd[walk.slot]!;
    for (const step of walk.rest) {
      const container = bytes[from];
      if (container !== OPEN_OBJECT && container !== 0x5b) return undefined;
      // a sub-range of a document the scanner accepted: this scan accepts it too, unless an escaped name
      if (!step.scan(bytes, from, to)) return DECLINE;
      if (!step.found(0)) return undefined;
      from = step.valueStart[0]!;
      to = step.valueEnd[0]!;
    }
    this.lastFrom = from;
    this.lastTo = to;
    if (bytes[from] === QUOTE) {
      let i = from + 1;
      while (i < to - 1 && bytes[i] !== BACKSLASH) i++;
      if (i === to - 1) return bytes.toString("utf8", from + 1, to - 1);
    }
    const text = bytes.toString("utf8", from, to);
    const value: unknown = JSON.parse(text);
    // as the exact path does: an integer a double would round keeps its digits
    return exact && mayBeRounded(value) ? exactInteger(value, text) : value;
  }
}
