/**
 * Byte ranges inside a JSON text that JSON.parse has accepted already: where the records of a file are,
 * where the value at a JSON pointer is. The source's own bytes then become the stored document and the
 * key, so that numbers keep the digits they were written with (JSON.parse rounds integers beyond 2^53:
 * 1234567890123456789 and ...788 are the same double). Iterative, so any nesting depth is fine.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const ARRAY_INDEX = /^(0|[1-9]\d*)$/;

/** A value's bytes: [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  return i;
}

/** Index after the string whose opening quote is b[i]. */
function skipString(b: Uint8Array, i: number, end: number): number {
  i++;
  while (i < end) {
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    i += c === BACKSLASH ? 2 : 1;
  }
  return end;
}

/** Bytes that matter when skipping a container: 1 a quote, 2 an opening bracket, 3 a closing one. */
const SKIP_CLASS = new Uint8Array(256);
SKIP_CLASS[QUOTE] = 1;
SKIP_CLASS[OPEN_OBJECT] = 2;
SKIP_CLASS[OPEN_ARRAY] = 2;
SKIP_CLASS[CLOSE_OBJECT] = 3;
SKIP_CLASS[CLOSE_ARRAY] = 3;

/** Index after the value starting at b[i] (valid JSON assumed). */
export function skipValue(b: Uint8Array, i: number, end: number): number {
  const first = b[i];
  if (first === QUOTE) return skipString(b, i, end);
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) {
    // a number or a literal: up to the next structural byte or whitespace
    while (i < end) {
      const d = b[i]!;
      if (d === COMMA || d === CLOSE_OBJECT || d === CLOSE_ARRAY || d <= 0x20) break;
      i++;
    }
    return i;
  }
  // inside a container only strings and brackets matter: one table lookup per byte
  let depth = 0;
  while (i < end) {
    const kind = SKIP_CLASS[b[i]!]!;
    if (kind === 0) i++;
    else if (kind === 1) i = skipString(b, i, end);
    else {
      if (kind === 2) depth++;
      else if (--depth === 0) return i + 1;
      i++;
    }
  }
  return end;
}

/** The whole text's value (whitespace and a UTF-8 BOM around it left out). */
export function documentRange(b: Uint8Array, start = 0, end = b.length): ByteRange {
  let i = start;
  if (b[i] === 0xef && b[i + 1] === 0xbb && b[i + 2] === 0xbf) i += 3;
  i = skipSpace(b, i, end);
  return { start: i, end: skipValue(b, i, end) };
}

/** Ranges of the elements of the array at `range`. */
export function arrayElements(b: Uint8Array, range: ByteRange): ByteRange[] {
  const out: ByteRange[] = [];
  let i = skipSpace(b, range.start + 1, range.end);
  if (b[i] === CLOSE_ARRAY) return out;
  for (;;) {
    i = skipSpace(b, i, range.end);
    const after = skipValue(b, i, range.end);
    out.push({ start: i, end: after });
    i = skipSpace(b, after, range.end);
    if (b[i] !== COMMA) return out;
    i++;
  }
}

const decoder = new TextDecoder();

/** The member `name` of the object at `range` (the last of equal names, as JSON.parse keeps). */
function memberOf(b: Uint8Array, range: ByteRange, name: string): ByteRange | undefined {
  let found: ByteRange | undefined;
  let i = skipSpace(b, range.start + 1, range.end);
  if (b[i] === CLOSE_OBJECT) return undefined;
  for (;;) {
    i = skipSpace(b, i, range.end);
    const nameEnd = skipString(b, i, range.end);
    let escaped = false;
    for (let k = i + 1; k < nameEnd - 1; k++) if (b[k] === BACKSLASH) escaped = true;
    const memberName = escaped
      ? (JSON.parse(decoder.decode(b.subarray(i, nameEnd))) as string)
      : decoder.decode(b.subarray(i + 1, nameEnd - 1));
    i = skipSpace(b, nameEnd, range.end) + 1; // the colon
    i = skipSpace(b, i, range.end);
    const after = skipValue(b, i, range.end);
    if (memberName === name) found = { start: i, end: after };
    i = skipSpace(b, after, range.end);
    if (b[i] !== COMMA) return found;
    i++;
  }
}

/** The value at JSON pointer `path` inside the value at `range`, as getAtPointer finds it; undefined when absent. */
export function rangeAtPointer(
  b: Uint8Array,
  range: ByteRange,
  path: readonly string[],
): ByteRange | undefined {
  let at: ByteRange | undefined = range;
  for (const segment of path) {
    const c = b[at.start];
    if (c === OPEN_OBJECT) at = memberOf(b, at, segment);
    else if (c === OPEN_ARRAY) {
      if (!ARRAY_INDEX.test(segment)) return undefined;
      at = arrayElements(b, at)[Number(segment)];
    } else return undefined;
    if (!at) return undefined;
  }
  return at;
}

const PLAIN_INTEGER = /^-?\d+$/;

/**
 * A parsed JSON number as its source digits when a double does not hold it exactly (an integer beyond
 * 2^53, e.g. a Snowflake id): "1234567890123456789"; otherwise `value` itself. Other number forms
 * (fractions, exponents) are left as parsed.
 */
export function exactInteger(value: number, text: string): number | string {
  if (!Number.isInteger(value) || Number.isSafeInteger(value)) return value;
  return PLAIN_INTEGER.test(text) ? text : value;
}

/** Whether a parsed value may have lost digits: an integer beyond what a double holds exactly. */
export function mayBeRounded(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value);
}
