import { jsonbString, jsonbText } from "./canonical-json.ts";

/**
 * The jsonb text of a document that has been parsed already, without parsing it again. jsonb prints a
 * number as written (scale kept, exponent applied), which a parsed JavaScript number has forgotten;
 * the two agree when a number has at most 15 significant digits, no exponent and no trailing zero
 * after the point (15 digits always round-trip through a double, so String() gives them back). When
 * the text holds anything that could be another form (a digit, "e" and a digit; a "." followed by
 * digits ending in 0; 16 or more digits and points in a row), the exact parser in canonical-json.ts
 * is used instead; matches inside strings only cost that slower path. Key order, string escapes and
 * duplicate keys (the last one kept) are as jsonbText does them. See docs/verification.md.
 */
const NUMBER_FORM_MATTERS = /\d[eE][+-]?\d|\.\d*0(?!\d)|\d[\d.]{15}/;

const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;

/** jsonbString, with a native scan first: most strings need no escape at all. */
function stringText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? jsonbString(value) : `"${value}"`;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function compareAsciiKeys(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** jsonb's key order: shorter (in UTF-8 bytes) first, then bytewise. */
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

/** Containers deeper than this are left to the exact parser, which is iterative. */
const MAX_RECURSION = 256;

/**
 * Canonical text of a parsed value; undefined when a value is not one a plain JSON text yields, or nests
 * deeper than MAX_RECURSION (then the text is parsed instead).
 */
function write(value: unknown, depth = 0): string | undefined {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return stringText(value);
    case "number":
      if (!Number.isFinite(value) || Object.is(value, -0)) return undefined;
      // String() writes an exponent below 1e-6 (and from 1e21), where jsonb writes plain digits
      return Number.isSafeInteger(value) || !/e/.test(String(value)) ? String(value) : undefined;
    case "object": {
      if (depth >= MAX_RECURSION) return undefined;
      if (Array.isArray(value)) {
        const items: string[] = [];
        for (const item of value) {
          const text = write(item, depth + 1);
          if (text === undefined) return undefined;
          items.push(text);
        }
        return `[${items.join(", ")}]`;
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      keys.sort(keys.every(isAscii) ? compareAsciiKeys : compareKeys);
      const parts: string[] = [];
      for (const key of keys) {
        const text = write(record[key], depth + 1);
        if (text === undefined) return undefined;
        parts.push(`${stringText(key)}: ${text}`);
      }
      return `{${parts.join(", ")}}`;
    }
    default:
      return undefined;
  }
}

const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

/**
 * Whether a JSON text may hold a number whose written form jsonb keeps but a parsed value forgot; a
 * match inside a string (a date, a version "1.10") is looked past, at the cost of one more scan.
 */
export function numberFormMatters(text: string): boolean {
  return NUMBER_FORM_MATTERS.test(text) && NUMBER_FORM_MATTERS.test(text.replace(JSON_STRING, '""'));
}

/**
 * jsonb canonical text of a parsed value whose source text has no number form that matters
 * (numberFormMatters); undefined when the value cannot be written this way (then parse the text).
 */
export function parsedValueJsonbText(value: unknown): string | undefined {
  return write(value);
}

/**
 * jsonb canonical text of `text`, given `value` = JSON.parse(text): from the value when no number's
 * written form can matter, from the text otherwise. Throws JsonCanonicalError when jsonb would reject it.
 */
export function documentJsonbText(text: string, value: unknown): string {
  if (!NUMBER_FORM_MATTERS.test(text)) {
    const fast = write(value);
    if (fast !== undefined) return fast;
  }
  return jsonbText(text);
}
