/**
 * jsonb's canonical text of a JSON document given as UTF-8 bytes, written into a reusable buffer without
 * decoding or parsing the document in JavaScript: the verifier's per-document digest of a small NDJSON
 * line then costs one pass over its bytes and one md5. It covers what jsonb prints exactly as the source
 * wrote it: strings without escapes, numbers without an exponent (and not a negative zero), literals;
 * objects are re-ordered (shorter keys first, then bytewise; the last of a duplicated key kept) and
 * re-spaced (", " and ": "). Anything else (an escape, an exponent, nesting deeper than MAX_DEPTH,
 * text that is not JSON) is declined, and the caller takes the exact parser (canonical-json.ts) instead:
 * declining is never a verdict on the document. Its own scanner, so that the check stays independent
 * of the import's (json-scan.ts) and of the COPY encoder.
 */
const MAX_DEPTH = 64;
/** Longer numbers are left to the exact parser (numeric's limits). */
const MAX_NUMBER_LENGTH = 1000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
const NULL = Buffer.from("null");

/** from[start, end) to `to` at `at`; returns where it ends. A loop: Buffer.copy costs more for a few bytes. */
function copyBytes(from: Buffer, start: number, end: number, to: Buffer, at: number): number {
  if (end - start > 64) return at + from.copy(to, at, start, end);
  for (let i = start; i < end; i++) to[at++] = from[i]!;
  return at;
}

export class CanonicalBytesWriter {
  /** The output: a prefix the caller wrote, then the canonical text (see `write`). */
  out: Buffer = Buffer.allocUnsafe(16 * 1024);
  private scratch: Buffer = Buffer.allocUnsafe(16 * 1024);
  /** Open objects' members, four entries each: name start, name end (input), value start, value end (output). */
  private members = new Int32Array(1024);
  private top = 0;
  /** An object's members in key order (offsets into `members`); an object's rewrite uses it once done. */
  private order = new Int32Array(64);
  private src: Buffer = this.out;
  private at = 0;
  private end = 0;
  private pos = 0;

  /** Makes room for `prefix` bytes written by the caller at out[0, prefix) plus any canonical text of `inputBytes`. */
  reserve(prefix: number, inputBytes: number): void {
    // canonical text is at most twice its input (", " for ",", ": " for ":"), plus an empty container's pair
    const need = prefix + 2 * inputBytes + 16;
    if (this.out.length < need) {
      const size = Math.max(need, this.out.length * 2);
      const grown = Buffer.allocUnsafe(size);
      this.out.copy(grown, 0, 0, prefix);
      this.out = grown;
      this.scratch = Buffer.allocUnsafe(size);
    }
  }

  /**
   * Writes the canonical text of the document bytes[start, end) at out[offset, ...) (call `reserve` first)
   * and returns where it ends, or -1 when it declines.
   */
  write(bytes: Buffer, start: number, end: number, offset: number): number {
    this.src = bytes;
    this.at = start;
    this.end = end;
    this.pos = offset;
    this.top = 0;
    if (!this.value(0)) return -1;
    this.skip();
    return this.at === end ? this.pos : -1;
  }

  private skip(): void {
    const src = this.src;
    while (this.at < this.end) {
      const c = src[this.at]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.at++;
    }
  }

  private value(depth: number): boolean {
    this.skip();
    if (this.at >= this.end) return false;
    const c = this.src[this.at]!;
    if (c === QUOTE) return this.string();
    if (c === OPEN_OBJECT) return depth < MAX_DEPTH && this.object(depth);
    if (c === OPEN_ARRAY) return depth < MAX_DEPTH && this.array(depth);
    if (c === 0x74) return this.literal(TRUE);
    if (c === 0x66) return this.literal(FALSE);
    if (c === 0x6e) return this.literal(NULL);
    return this.number();
  }

  /** Where the string at `at` ends (after its closing quote), or -1 when it has an escape or is not one. */
  private stringEnd(): number {
    const src = this.src;
    let i = this.at + 1;
    while (i < this.end) {
      const c = src[i]!;
      if (c === QUOTE) return i + 1;
      if (c === BACKSLASH || c < 0x20) return -1;
      i++;
    }
    return -1;
  }

  private string(): boolean {
    const after = this.stringEnd();
    if (after < 0) return false;
    this.pos = copyBytes(this.src, this.at, after, this.out, this.pos);
    this.at = after;
    return true;
  }

  private literal(word: Buffer): boolean {
    const src = this.src;
    if (this.at + word.length > this.end) return false;
    for (let k = 0; k < word.length; k++) if (src[this.at + k] !== word[k]) return false;
    this.pos = copyBytes(word, 0, word.length, this.out, this.pos);
    this.at += word.length;
    return true;
  }

  private number(): boolean {
    const src = this.src;
    const start = this.at;
    let i = start;
    const negative = src[i] === MINUS;
    if (negative) i++;
    let nonZero = false;
    let c = i < this.end ? src[i]! : -1;
    if (c === ZERO) i++;
    else if (c > ZERO && c <= NINE) {
      nonZero = true;
      while (i < this.end && (c = src[i]!) >= ZERO && c <= NINE) i++;
    } else return false;
    if (i < this.end && src[i] === DOT) {
      i++;
      const digits = i;
      while (i < this.end && (c = src[i]!) >= ZERO && c <= NINE) {
        if (c !== ZERO) nonZero = true;
        i++;
      }
      if (i === digits) return false;
    }
    if (i < this.end && (src[i] === LOWER_E || src[i] === UPPER_E)) return false;
    // jsonb prints -0 as 0; and the exact parser knows numeric's limits
    if ((negative && !nonZero) || i - start > MAX_NUMBER_LENGTH) return false;
    this.pos = copyBytes(src, start, i, this.out, this.pos);
    this.at = i;
    return true;
  }

  private array(depth: number): boolean {
    const src = this.src;
    const out = this.out;
    this.at++;
    out[this.pos++] = OPEN_ARRAY;
    this.skip();
    if (this.at < this.end && src[this.at] === CLOSE_ARRAY) {
      this.at++;
      out[this.pos++] = CLOSE_ARRAY;
      return true;
    }
    for (;;) {
      if (!this.value(depth + 1)) return false;
      this.skip();
      if (this.at >= this.end) return false;
      const c = src[this.at++];
      if (c === CLOSE_ARRAY) {
        out[this.pos++] = CLOSE_ARRAY;
        return true;
      }
      if (c !== COMMA) return false;
      out[this.pos++] = COMMA;
      out[this.pos++] = 0x20;
    }
  }

  private object(depth: number): boolean {
    const src = this.src;
    this.at++;
    this.skip();
    if (this.at < this.end && src[this.at] === CLOSE_OBJECT) {
      this.at++;
      this.out[this.pos++] = OPEN_OBJECT;
      this.out[this.pos++] = CLOSE_OBJECT;
      return true;
    }
    // member values are written at `base` as they come, then the object is rewritten there in key order
    const base = this.pos;
    const first = this.top;
    for (;;) {
      this.skip();
      if (this.at >= this.end || src[this.at] !== QUOTE) return false;
      const nameEnd = this.stringEnd();
      if (nameEnd < 0) return false;
      const nameStart = this.at + 1;
      this.at = nameEnd;
      this.skip();
      if (this.at >= this.end || src[this.at] !== COLON) return false;
      this.at++;
      const valueStart = this.pos;
      if (!this.value(depth + 1)) return false;
      this.push(nameStart, nameEnd - 1, valueStart, this.pos);
      this.skip();
      if (this.at >= this.end) return false;
      const c = src[this.at++];
      if (c === CLOSE_OBJECT) break;
      if (c !== COMMA) return false;
    }
    this.rewrite(base, first);
    return true;
  }

  private push(nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    if (this.top + 4 > this.members.length) {
      const grown = new Int32Array(this.members.length * 2);
      grown.set(this.members);
      this.members = grown;
    }
    const m = this.members;
    m[this.top++] = nameStart;
    m[this.top++] = nameEnd;
    m[this.top++] = valueStart;
    m[this.top++] = valueEnd;
  }

  /** jsonb's key order: shorter first, then bytewise; ties (a duplicated key) by position. */
  private compare(a: number, b: number): number {
    const m = this.members;
    const aStart = m[a]!;
    const bStart = m[b]!;
    const aLength = m[a + 1]! - aStart;
    const bLength = m[b + 1]! - bStart;
    if (aLength !== bLength) return aLength - bLength;
    const src = this.src;
    for (let k = 0; k < aLength; k++) {
      const d = src[aStart + k]! - src[bStart + k]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  /** Rewrites the members of the object whose values start at `base` in key order, duplicates dropped. */
  private rewrite(base: number, first: number): void {
    const count = (this.top - first) / 4;
    if (this.order.length < count) this.order = new Int32Array(count * 2);
    const order = this.order;
    for (let k = 0; k < count; k++) {
      // insertion sort, stable: an equal name goes after the earlier one
      const member = first + 4 * k;
      let j = k;
      while (j > 0 && this.compare(order[j - 1]!, member) > 0) {
        order[j] = order[j - 1]!;
        j--;
      }
      order[j] = member;
    }
    const out = this.out;
    const scratch = this.scratch;
    copyBytes(out, base, this.pos, scratch, 0);
    const src = this.src;
    const m = this.members;
    let pos = base;
    out[pos++] = OPEN_OBJECT;
    let written = 0;
    for (let k = 0; k < count; k++) {
      const member = order[k]!;
      // of a duplicated key, jsonb keeps the last
      if (k + 1 < count && this.compare(member, order[k + 1]!) === 0) continue;
      if (written++ > 0) {
        out[pos++] = COMMA;
        out[pos++] = 0x20;
      }
      out[pos++] = QUOTE;
      pos = copyBytes(src, m[member]!, m[member + 1]!, out, pos);
      out[pos++] = QUOTE;
      out[pos++] = COLON;
      out[pos++] = 0x20;
      pos = copyBytes(scratch, m[member + 2]! - base, m[member + 3]! - base, out, pos);
    }
    out[pos++] = CLOSE_OBJECT;
    this.pos = pos;
    this.top = first;
  }
}
