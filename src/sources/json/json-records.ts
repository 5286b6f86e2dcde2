import { formatPointer, getAtPointer } from "../../documents/json-pointer.ts";
import type { SourceItem } from "../../documents/source-record.ts";

/**
 * The records in one parsed JSON file: the file itself (an object), the elements of a top-level array,
 * or the elements of the array at `recordsPointer` in an envelope (`--records /results`).
 * A record that is the whole file keeps its exact text; array elements are re-serialized for the
 * quarantine (same value, canonical spacing) because the parser does not keep their byte ranges.
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
  if (!Array.isArray(container)) {
    const whole = container === value;
    const elementText = whole ? text : JSON.stringify(container);
    yield {
      kind: "record",
      value: container,
      ...(whole ? { text } : {}),
      file,
      location: base.length ? `${file}:${formatPointer(base)}` : file,
      raw: () => (whole ? bytes : Buffer.from(elementText, "utf8")),
      rawFormat: "json",
    };
    return;
  }
  for (let index = 0; index < container.length; index++) {
    const element = container[index];
    yield {
      kind: "record",
      value: element,
      file,
      location: `${file}:${formatPointer([...base, index])}`,
      raw: () => Buffer.from(JSON.stringify(element) ?? "null", "utf8"),
      rawFormat: "json",
    };
  }
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
