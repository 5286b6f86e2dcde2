import { jsonbNumberText } from "./canonical-number.ts";

/**
 * Canonical text of a JSON document as PostgreSQL's jsonb prints it: object keys de-duplicated (the
 * last one wins) and sorted by UTF-8 length then bytes, ", " and ": " separators, numbers as exact
 * decimals (exponent applied, scale as written), strings with jsonb's escapes. Parsing keeps numbers
 * as text, so no digit is lost to floating point. See docs/verification.md.
 */
export class JsonCanonicalError extends Error {}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Escapes a string the way jsonb output does (escape_json). */
export function jsonbString(value: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += value.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      default:
        out += `\\u${c.toString(16).padStart(4, "0")}`;
    }
  }
  return `${out + value.slice(start)}"`;
}

/** jsonb's key order: shorter (in UTF-8 bytes) first, then bytewise. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function compareKeys(a: string, b: string): number {
  if (isAscii(a) && isAscii(b)) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const ba = Buffer.from(a, "utf8");
  const bb = Buffer.from(b, "utf8");
  if (ba.length !== bb.length) return ba.length - bb.length;
  return Buffer.compare(ba, bb);
}

/** An open container while parsing: its items so far, or its members and the key of the one being read. */
type Container =
  { kind: "array"; items: string[] } | { kind: "object"; entries: Map<string, string>; key: string };

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  /**
   * The document's canonical text. Iterative (an explicit stack of open containers), so that no nesting
   * depth overflows the call stack.
   */
  parseDocument(): string {
    const stack: Container[] = [];
    let result: string;
    next: for (;;) {
      // ---- a value at pos ----
      this.skip();
      const c = this.text[this.pos];
      let value: string;
      if (c === "{" || c === "[") {
        this.pos++;
        this.skip();
        const close = c === "{" ? "}" : "]";
        if (this.text[this.pos] === close) {
          this.pos++;
          value = c === "{" ? "{}" : "[]";
        } else {
          stack.push(
            c === "{"
              ? { kind: "object", entries: new Map(), key: this.memberKey() }
              : { kind: "array", items: [] },
          );
          continue;
        }
      } else value = this.scalar(c);
      // ---- a value ended: into its container, closing containers that end here ----
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) {
          result = value;
          break next;
        }
        if (top.kind === "array") top.items.push(value);
        else {
          top.entries.delete(top.key);
          top.entries.set(top.key, value);
        }
        this.skip();
        const d = this.text[this.pos++];
        if (d === ",") {
          if (top.kind === "object") top.key = this.memberKey();
          continue next;
        }
        if (top.kind === "array") {
          if (d !== "]") this.fail("expected , or ]");
          value = `[${top.items.join(", ")}]`;
        } else {
          if (d !== "}") this.fail("expected , or }");
          const keys = [...top.entries.keys()].sort(compareKeys);
          value = `{${keys.map((k) => `${jsonbString(k)}: ${top.entries.get(k)}`).join(", ")}}`;
        }
        stack.pop();
      }
    }
    this.skip();
    if (this.pos < this.text.length) this.fail("unexpected text after the JSON value");
    return result;
  }

  /** `"key"` and `:` of an object member. */
  private memberKey(): string {
    this.skip();
    if (this.text[this.pos] !== '"') this.fail("expected a key");
    const key = this.string();
    this.skip();
    if (this.text[this.pos++] !== ":") this.fail("expected :");
    return key;
  }

  private fail(message: string): never {
    throw new JsonCanonicalError(`${message} at offset ${this.pos}`);
  }

  private skip(): void {
    while (this.pos < this.text.length && WHITESPACE.has(this.text.charCodeAt(this.pos))) this.pos++;
  }

  /** A string, literal or number starting with `c` at pos. */
  private scalar(c: string | undefined): string {
    if (c === '"') return jsonbString(this.string());
    if (c === "t" || c === "f" || c === "n") {
      for (const word of ["true", "false", "null"]) {
        if (this.text.startsWith(word, this.pos)) {
          this.pos += word.length;
          return word;
        }
      }
      this.fail("invalid literal");
    }
    return this.number();
  }

  private number(): string {
    const match = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = this.pos;
    const m = match.exec(this.text);
    if (!m || m[0] === "" || m[0] === "-") this.fail("invalid value");
    this.pos += m[0].length;
    const text = jsonbNumberText(m[0]);
    if (text === undefined) this.fail("number out of range");
    return text;
  }

  private string(): string {
    this.pos++;
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= this.text.length) this.fail("unterminated string");
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x22) {
        out += this.text.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c >= 0xd800 && c <= 0xdfff) {
        const pair = c <= 0xdbff && (this.text.charCodeAt(this.pos + 1) & 0xfc00) === 0xdc00;
        if (!pair) this.fail("lone surrogate in string");
        this.pos += 2;
        continue;
      }
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.slice(start, this.pos);
      const e = this.text[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          let code = this.hex4();
          if (code === 0) this.fail("\\u0000 cannot be stored in jsonb");
          if (code >= 0xd800 && code <= 0xdbff) {
            if (this.text[this.pos] !== "\\" || this.text[this.pos + 1] !== "u")
              this.fail("high surrogate not followed by a low surrogate");
            this.pos += 2;
            const low = this.hex4();
            if (low < 0xdc00 || low > 0xdfff) this.fail("high surrogate not followed by a low surrogate");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          } else if (code >= 0xdc00 && code <= 0xdfff) {
            this.fail("low surrogate without a high surrogate");
          }
          out += String.fromCodePoint(code);
          break;
        }
        default:
          this.fail("invalid escape");
      }
      start = this.pos;
    }
  }

  private hex4(): number {
    const hex = this.text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid \\u escape");
    this.pos += 4;
    return Number.parseInt(hex, 16);
  }
}

/** jsonb canonical text of JSON text; throws JsonCanonicalError when jsonb would reject it. */
export function jsonbText(json: string): string {
  return new Parser(json).parseDocument();
}

/**
 * jsonb canonical text of a JavaScript value (a parsed document, e.g. from a JSON or CSV source).
 * Numbers are taken as JavaScript prints them (shortest round-trip); use `jsonbText` on the original
 * text when the source has it, so that digits beyond double precision survive.
 */
export function jsonbTextOfValue(value: unknown): string {
  return jsonbText(JSON.stringify(value));
}
