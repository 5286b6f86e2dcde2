/**
 * A validating JSON scanner over UTF-8 bytes: the fast path of the document import. It accepts exactly
 * what JSON.parse accepts (RFC 8259: no trailing commas, no leading zeros, only the four whitespace
 * bytes, no raw control characters in strings) and, on the way, finds the byte ranges of a few members
 * of the outermost object (the last of equal names, as JSON.parse keeps) without building any value.
 * A line it accepts is sent to PostgreSQL as-is; anything it does not accept takes the exact slow path
 * (JSON.parse and its messages). It never decides alone that a record is bad.
 *
 * The caller has checked that the bytes are valid UTF-8 (isUtf8), so bytes >= 0x80 are plain
 * string content here.
 */
import { MAX_DOCUMENT_DEPTH } from "./json-depth.ts";

/** Inside a string: 0 plain, 1 closing quote, 2 backslash, 3 raw control character (invalid). */
const STRING_BYTE = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_BYTE[c] = 3;
STRING_BYTE[0x22] = 1;
STRING_BYTE[0x5c] = 2;
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}
/** Single-character escapes after a backslash: \" \\ \/ \b \f \n \r \t. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;
const DIGIT = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) DIGIT[c] = 1;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SPACE = 0x20;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Deeper nesting takes the slow path, which rejects it there with the record's location (json-depth.ts). */
const MAX_DEPTH = MAX_DOCUMENT_DEPTH;
const IN_OBJECT = 1;
const IN_ARRAY = 2;

/** Why a scan did not accept its input (for tests and diagnostics; every one means "take the slow path"). */
export type ScanRefusal = "invalid" | "jsonb" | "escaped-name" | "too-deep";

/**
 * One scanner per set of wanted members (e.g. the first segments of the key pointers); reusable, not
 * re-entrant. `scan()` returns true when bytes[start, end) is one valid JSON value whose strings
 * PostgreSQL jsonb can store; then `found(i)` / `valueStart[i]` / `valueEnd[i]` say where the value of
 * wanted member i of the outermost object (or element i of the outermost array, for `index`) is.
 */
export class JsonScanner {
  /** Byte ranges of the wanted members' values in the last accepted scan; -1 when absent. */
  readonly valueStart: Int32Array;
  readonly valueEnd: Int32Array;
  /** Byte of the outermost value's first character (`{`, `[`, `"`, ...). */
  first = 0;
  /** Whether the text holds a byte COPY's text format must escape (backslash, tab, newline, return). */
  copyEscapes = false;
  /** Why the last scan returned false. */
  refusal: ScanRefusal | undefined;
  private readonly names: Uint8Array[];
  private readonly stack = new Uint8Array(MAX_DEPTH);
  /** Slot of the wanted member whose name memberName() just read, or -1. */
  private pendingSlot = -1;
  /** Whether the string string() just read had a backslash escape. */
  private lastHadEscape = false;

  /**
   * @param names members of the outermost object to locate (raw UTF-8 compared; a member name written
   *   with escapes at that level makes the scan refuse, since it might spell one of them)
   * @param index element of the outermost array to locate (for pointers through arrays), or -1
   */
  constructor(
    names: readonly string[],
    private readonly index = -1,
  ) {
    this.names = names.map((name) => Buffer.from(name, "utf8"));
    const slots = Math.max(this.names.length, 1);
    this.valueStart = new Int32Array(slots);
    this.valueEnd = new Int32Array(slots);
  }

  found(i: number): boolean {
    return this.valueStart[i]! >= 0;
  }

  scan(b: Uint8Array, start: number, end: number): boolean {
    this.valueStart.fill(-1);
    this.valueEnd.fill(-1);
    this.copyEscapes = false;
    this.refusal = undefined;
    const stack = this.stack;
    const wantedNames = this.names.length;
    let depth = 0;
    let i = start;
    // which wanted slot the value now being scanned at depth 1 fills (-1: none)
    let pending = -1;
    let pendingStart = 0;
    let element = -1;
    i = this.skipSpace(b, i, end);
    if (i >= end) return this.refuse("invalid");
    this.first = b[i]!;
    for (;;) {
      // ---- a value is expected at b[i] (whitespace skipped) ----
      if (i >= end) return this.refuse("invalid");
      const c = b[i]!;
      if (depth === 1 && stack[0] === IN_ARRAY) {
        element++;
        if (element === this.index) {
          pending = 0;
          pendingStart = i;
        }
      }
      if (c === QUOTE) {
        i = this.string(b, i, end);
        if (i < 0) return false;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (depth === MAX_DEPTH) return this.refuse("too-deep");
        i = this.skipSpace(b, i + 1, end);
        if (i >= end) return this.refuse("invalid");
        if (b[i] === (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
          i++;
        } else {
          stack[depth++] = c === OPEN_OBJECT ? IN_OBJECT : IN_ARRAY;
          if (c === OPEN_ARRAY) continue;
          // the first member's name
          i = this.memberName(b, i, end, depth, wantedNames);
          if (i < 0) return false;
          if (this.pendingSlot >= 0) {
            pending = this.pendingSlot;
            pendingStart = i;
          }
          continue;
        }
      } else if (c === 0x74) {
        if (i + 3 >= end || b[i + 1] !== 0x72 || b[i + 2] !== 0x75 || b[i + 3] !== 0x65)
          return this.refuse("invalid");
        i += 4;
      } else if (c === 0x66) {
        if (i + 4 >= end || b[i + 1] !== 0x61 || b[i + 2] !== 0x6c || b[i + 3] !== 0x73 || b[i + 4] !== 0x65)
          return this.refuse("invalid");
        i += 5;
      } else if (c === 0x6e) {
        if (i + 3 >= end || b[i + 1] !== 0x75 || b[i + 2] !== 0x6c || b[i + 3] !== 0x6c)
          return this.refuse("invalid");
        i += 4;
      } else {
        i = number(b, i, end);
        if (i < 0) return this.refuse("invalid");
      }
      // ---- a value ended at i: close containers, or go on to the next element/member ----
      for (;;) {
        if (pending >= 0 && depth === 1) {
          this.valueStart[pending] = pendingStart;
          this.valueEnd[pending] = i;
          pending = -1;
        }
        if (i < end && b[i]! <= SPACE) i = this.skipSpace(b, i, end);
        if (depth === 0) return i === end ? true : this.refuse("invalid");
        if (i >= end) return this.refuse("invalid");
        const d = b[i]!;
        const container = stack[depth - 1]!;
        if (d === COMMA) {
          i++;
          if (i < end && b[i]! <= SPACE) i = this.skipSpace(b, i, end);
          if (container === IN_OBJECT) {
            i = this.memberName(b, i, end, depth, wantedNames);
            if (i < 0) return false;
            if (this.pendingSlot >= 0) {
              pending = this.pendingSlot;
              pendingStart = i;
            }
          }
          break;
        }
        if (
          (d === CLOSE_OBJECT && container === IN_OBJECT) ||
          (d === CLOSE_ARRAY && container === IN_ARRAY)
        ) {
          i++;
          depth--;
          continue;
        }
        return this.refuse("invalid");
      }
    }
  }

  /**
   * Reads `"name"` `:` at b[i] and skips the whitespace after the colon; sets pendingSlot when the name,
   * in the outermost object, is a wanted one. Returns the index of the value, or -1 (refused).
   */
  private memberName(b: Uint8Array, i: number, end: number, depth: number, wantedNames: number): number {
    this.pendingSlot = -1;
    if (i >= end || b[i] !== QUOTE) return this.fail("invalid");
    const nameStart = i + 1;
    const after = this.string(b, i, end);
    if (after < 0) return -1;
    if (depth === 1 && wantedNames > 0 && this.stack[0] === IN_OBJECT) {
      // "k\u005fnumber" is "k_number": an escaped name cannot be compared byte by byte
      if (this.lastHadEscape) return this.fail("escaped-name");
      const length = after - 1 - nameStart;
      for (let n = 0; n < wantedNames; n++) {
        const name = this.names[n]!;
        if (name.length !== length) continue;
        let k = 0;
        while (k < length && b[nameStart + k] === name[k]) k++;
        if (k === length) {
          this.pendingSlot = n;
          break;
        }
      }
    }
    let j = after;
    if (j < end && b[j]! <= SPACE) j = this.skipSpace(b, j, end);
    if (j >= end || b[j] !== COLON) return this.fail("invalid");
    j++;
    if (j < end && b[j]! <= SPACE) j = this.skipSpace(b, j, end);
    return j;
  }

  /** Skips the string starting at the quote b[i]; returns the index after its closing quote, or -1. */
  private string(b: Uint8Array, i: number, end: number): number {
    this.lastHadEscape = false;
    i++;
    // most strings hold no escape: one table lookup per byte up to the closing quote
    while (i < end && STRING_BYTE[b[i]!] === 0) i++;
    if (i < end && b[i] === QUOTE) return i + 1;
    return this.escapedString(b, i, end);
  }

  /** The rest of a string from b[i], a backslash, a control character or the end of the input. */
  private escapedString(b: Uint8Array, i: number, end: number): number {
    for (;;) {
      while (i < end && STRING_BYTE[b[i]!] === 0) i++;
      if (i >= end) return this.fail("invalid");
      const kind = STRING_BYTE[b[i]!]!;
      if (kind === 1) return i + 1;
      if (kind === 3) return this.fail("invalid");
      // a backslash escape
      this.lastHadEscape = true;
      this.copyEscapes = true;
      if (i + 1 >= end) return this.fail("invalid");
      const e = b[i + 1]!;
      if (e !== 0x75) {
        if (SIMPLE_ESCAPE[e] !== 1) return this.fail("invalid");
        i += 2;
        continue;
      }
      const unit = hex4(b, i + 2, end);
      if (unit < 0) return this.fail("invalid");
      i += 6;
      // jsonb stores neither U+0000 nor a surrogate that is not part of a pair (the slow path says where)
      if (unit === 0 || (unit >= 0xdc00 && unit <= 0xdfff)) return this.fail("jsonb");
      if (unit >= 0xd800 && unit <= 0xdbff) {
        const low = i + 1 < end && b[i] === BACKSLASH && b[i + 1] === 0x75 ? hex4(b, i + 2, end) : -1;
        if (low < 0xdc00 || low > 0xdfff) return this.fail("jsonb");
        i += 6;
      }
    }
  }

  private skipSpace(b: Uint8Array, i: number, end: number): number {
    while (i < end) {
      const c = b[i]!;
      if (c === SPACE) i++;
      else if (c === 0x0a || c === 0x0d || c === 0x09) {
        this.copyEscapes = true;
        i++;
      } else break;
    }
    return i;
  }

  private refuse(why: ScanRefusal): false {
    this.refusal = why;
    return false;
  }

  private fail(why: ScanRefusal): -1 {
    this.refusal = why;
    return -1;
  }
}

/** The value of four hex digits at b[i..i+3], or -1. */
function hex4(b: Uint8Array, i: number, end: number): number {
  if (i + 3 >= end) return -1;
  const h0 = HEX[b[i]!]!;
  const h1 = HEX[b[i + 1]!]!;
  const h2 = HEX[b[i + 2]!]!;
  const h3 = HEX[b[i + 3]!]!;
  if ((h0 | h1 | h2 | h3) < 0) return -1;
  return (h0 << 12) | (h1 << 8) | (h2 << 4) | h3;
}

/** Skips a JSON number at b[i] (RFC 8259 grammar); returns the index after it, or -1. */
function number(b: Uint8Array, i: number, end: number): number {
  if (b[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (b[i] === 0x30) i++;
  else if (DIGIT[b[i]!] === 1) {
    i++;
    while (i < end && DIGIT[b[i]!] === 1) i++;
  } else return -1;
  if (i < end && b[i] === 0x2e) {
    i++;
    if (i >= end || DIGIT[b[i]!] !== 1) return -1;
    while (i < end && DIGIT[b[i]!] === 1) i++;
  }
  if (i < end && (b[i]! | 0x20) === 0x65) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= end || DIGIT[b[i]!] !== 1) return -1;
    while (i < end && DIGIT[b[i]!] === 1) i++;
  }
  return i;
}
