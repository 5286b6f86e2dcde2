import { formatPointer, getAtPointer } from "../../documents/json-pointer.ts";
import { arrayElements, type ByteRange, documentRange, rangeAtPointer } from "../../documents/json-ranges.ts";
import type { SourceItem } from "../../documents/source-record.ts";

/**
 * The records in one parsed JSON file: the file itself (an object), the elements of a top-level array,
 * or the elements of the array at `recordsPointer` in an envelope (`--records /results`).
 * Every record keeps its exact text and bytes (found in `bytes`, which JSON.parse accepted as `text`): the
 * stored document and the quarantine get the source's own digits, never a re-serialized number.
 */
export function* recordsOfDocument(
  value: unknown,
  text: string,
  bytes: Uint8Array,
  file: string,
  recordsPointer: readonly string[] | undefined,
): Generator<SourceItem> {
  let container: unknown = value;
  let base: (string | number)[] = [];
  if (recordsPointer && recordsPointer.length > 0) {
    container = getAtPointer(value, recordsPointer);
    base = [...recordsPointer];
    if (container === undefined) {
      yield {
        kind: "problem",
        file,
        location: `${file}:${formatPointer(base)}`,
        reason: `no records at ${formatPointer(base)} in ${file} (the --records pointer is missing here)`,
        raw: () => bytes,
        rawFormat: "json",
        records: 1,
      };
      return;
    }
  }
  const doc = documentRange(bytes);
  const range =
    recordsPointer && recordsPointer.length > 0 ? rangeAtPointer(bytes, doc, recordsPointer) : doc;
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const exact = (r: ByteRange | undefined, value: unknown) =>
    r
      ? { text: buffer.toString("utf8", r.start, r.end), bytes: buffer.subarray(r.start, r.end) }
      : fallback(value);
  if (!Array.isArray(container)) {
    const whole = container === value;
    const own = whole ? { text, bytes } : exact(range, container);
    yield {
      kind: "record",
      value: container,
      text: own.text,
      file,
      location: base.length ? `${file}:${formatPointer(base)}` : file,
      raw: () => own.bytes,
      rawFormat: "json",
    };
    return;
  }
  const elements = range ? arrayElements(bytes, range) : [];
  // the ranges match the parsed elements (one scan of the same valid text); otherwise re-serialize
  const ranged = elements.length === container.length;
  for (let index = 0; index < container.length; index++) {
    const element = container[index];
    const own = exact(ranged ? elements[index] : undefined, element);
    yield {
      kind: "record",
      value: element,
      text: own.text,
      file,
      location: `${file}:${formatPointer([...base, index])}`,
      raw: () => own.bytes,
      rawFormat: "json",
    };
  }
}

function fallback(value: unknown): { text: string; bytes: Uint8Array } {
  const text = JSON.stringify(value) ?? "null";
  return { text, bytes: Buffer.from(text, "utf8") };
}

/** "at position 17" in a JSON.parse message -> "line 2, column 5" computed from the text. */
export function describeParseError(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /position (\d+)/.exec(message);
  if (!match) return message;
  const position = Number(match[1]);
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < position && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `${message.replace(/\s*\(line \d+ column \d+\)/, "")} (line ${line}, column ${position - lineStart + 1})`;
}
