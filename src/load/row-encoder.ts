import type { ColumnPlan } from "../schema/plan.ts";

/**
 * Turns SQLite values into COPY text, column by column, as the plan's conversions say. Built for the
 * hot loop: one closure per column, no allocation for plain values, and a value that cannot be
 * represented is reported (never altered): the encoder returns `undefined` and sets `problem`.
 */
export interface ValueProblem {
  column: number;
  reason: string;
}

export interface RowEncoder {
  /**
   * The COPY line for `row` (`[rowid, ...values]`), or undefined when a value cannot be represented;
   * `problem` then says which column and why.
   */
  encode(row: readonly unknown[]): string | undefined;
  /**
   * One value's COPY cell (`\\N` for NULL), or undefined when it cannot be represented. Stored-byte
   * checks go through `rawText` with the row last passed to `encode` (use a rawText that does not need it).
   */
  encodeValue(column: number, value: unknown): string | undefined;
  problem: ValueProblem | undefined;
  /** Values converted per column (same order as the plan's columns). */
  readonly conversions: number[];
}

/** Re-reads a text value's stored bytes, to tell invalid UTF-8 from a genuine U+FFFD character. */
/** `row` is the raw row `[rowid, ...values]`; returns null when the stored bytes cannot be re-read. */
export type RawText = (column: number, row: readonly unknown[]) => Buffer | null;

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what we look for (PostgreSQL text cannot store it).
const NEEDS_ESCAPE = /[\\\n\r\t\x00\ufffd]/;
const ESCAPE_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Checks an ISO-8601 date/date-time the way PostgreSQL will read it; returns its parts or a reason. */
export function checkIsoDate(text: string): { hasTime: boolean; hasZone: boolean } | string {
  const m = ISO.exec(text);
  if (!m) return "not an ISO-8601 date";
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < 1) return "year 0 does not exist in PostgreSQL";
  if (month < 1 || month > 12) return "month out of range";
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day < 1 || day > (month === 2 && !leap ? 28 : DAYS[month - 1]!)) return "day out of range";
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59))
    return "time out of range";
  return { hasTime: m[4] !== undefined, hasZone: m[8] !== undefined };
}

/** A short, printable preview of a value for messages. */
export function previewValue(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (Buffer.isBuffer(value))
    return `x'${value.subarray(0, 24).toString("hex")}${value.length > 24 ? "..." : ""}'`;
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** 0001-01-01T00:00:00Z: PostgreSQL has no year 0, JavaScript prints years beyond 9999 with a sign. */
const EPOCH_MIN_MS = -62135596800000;
const EPOCH_MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * A UTC timestamp for COPY from epoch milliseconds, `YYYY-MM-DD HH:MM:SS.mmm+00`, computed with integer
 * arithmetic (days -> civil date, Howard Hinnant's algorithm): three times faster than Date#toISOString
 * in the hot loop. Years 1-9999 only (checked by the caller).
 */
export function formatEpochMs(ms: number): string {
  let days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  days += 719_468;
  const era = Math.floor(days / 146_097);
  const dayOfEra = days - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  const y = year < 1000 ? String(year).padStart(4, "0") : String(year);
  const fraction =
    millis === 0 ? "" : `.${millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : millis}`;
  return `${y}-${pad2(month)}-${pad2(day)} ${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}${fraction}+00`;
}

export function createRowEncoder(columns: readonly ColumnPlan[], rawText: RawText): RowEncoder {
  const conversions = new Array<number>(columns.length).fill(0);
  const state: RowEncoder = {
    problem: undefined,
    conversions,
    encode: () => undefined,
    encodeValue: () => undefined,
  };
  let current: readonly unknown[] = [];
  const fail = (column: number, reason: string): undefined => {
    state.problem = { column, reason };
    return undefined;
  };

  /** Escapes text for COPY; NUL and invalid UTF-8 are problems. */
  const text = (value: string, column: number): string | undefined => {
    if (!NEEDS_ESCAPE.test(value)) return value;
    if (value.includes("\u0000"))
      return fail(column, "NUL character in text (PostgreSQL text cannot store it)");
    if (value.includes("\ufffd")) {
      const raw = rawText(column, current);
      // Bytes that cannot be re-read cannot be proved valid: never load a possibly altered value.
      if (!raw)
        return fail(column, "text with U+FFFD whose stored bytes could not be re-read to check UTF-8");
      try {
        strictUtf8.decode(raw);
      } catch {
        return fail(column, "invalid UTF-8 in text");
      }
    }
    return value.replace(ESCAPE_ALL, (c) => ESCAPES[c]!);
  };
  const hex = (bytes: Uint8Array) =>
    `\\\\x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;

  const encoders = columns.map((plan, column): ((value: unknown) => string | undefined) => {
    switch (plan.conversion) {
      case "integer":
      case "real":
      case "numeric":
        return (v) => {
          if (typeof v === "number" || typeof v === "bigint") return String(v);
          return fail(column, `${typeof v} value in a ${plan.pgType} column`);
        };
      case "text":
        return (v) => {
          if (typeof v === "string") return text(v, column);
          if (typeof v === "number" || typeof v === "bigint") {
            conversions[column]!++;
            return String(v);
          }
          return fail(column, `${typeof v} value in a text column`);
        };
      case "bytea":
        return (v) => {
          if (Buffer.isBuffer(v)) return hex(v);
          conversions[column]!++;
          if (typeof v === "string") {
            const raw = rawText(column, current);
            return hex(raw ?? Buffer.from(v, "utf8"));
          }
          return hex(Buffer.from(String(v), "utf8"));
        };
      case "boolean":
        return (v) => {
          if (v === 0 || v === 0n) {
            conversions[column]!++;
            return "f";
          }
          if (v === 1 || v === 1n) {
            conversions[column]!++;
            return "t";
          }
          return fail(column, "not 0 or 1 in a boolean column");
        };
      case "date":
      case "timestamp":
      case "timestamptz":
        return (v) => {
          if (typeof v !== "string") return fail(column, `${typeof v} value in a ${plan.pgType} column`);
          const checked = checkIsoDate(v);
          if (typeof checked === "string") return fail(column, `unparsable date: ${checked}`);
          if (plan.conversion === "date" && checked.hasTime)
            return fail(column, "date-time in a date column");
          if (plan.conversion === "timestamp" && checked.hasZone)
            return fail(column, "value with a zone in a timestamp column");
          if (plan.conversion === "timestamptz" && !checked.hasZone) {
            conversions[column]!++;
            return `${v}+00`;
          }
          return v;
        };
      case "epoch-s":
      case "epoch-ms":
        return (v) => {
          if (typeof v !== "number" && typeof v !== "bigint")
            return fail(column, `${typeof v} value in an epoch column`);
          const ms = plan.conversion === "epoch-ms" ? Number(v) : Number(v) * 1000;
          if (!Number.isInteger(ms) || ms < EPOCH_MIN_MS || ms > EPOCH_MAX_MS)
            return fail(column, "epoch value outside years 1-9999");
          conversions[column]!++;
          return formatEpochMs(ms);
        };
      case "jsonb":
        return (v) => {
          if (typeof v !== "string") return fail(column, `${typeof v} value in a jsonb column`);
          if (v.includes("\\u0000")) return fail(column, "JSON \\u0000 escape (jsonb cannot store it)");
          conversions[column]!++;
          return text(v, column);
        };
      default:
        throw new Error(`unknown conversion ${plan.conversion}`);
    }
  });

  state.encodeValue = (column, value) => (value === null ? "\\N" : encoders[column]!(value));
  const count = columns.length;
  state.encode = (row) => {
    current = row;
    let line = "";
    for (let i = 0; i < count; i++) {
      const value = row[i + 1];
      let cell: string | undefined;
      if (value === null) cell = "\\N";
      else {
        cell = encoders[i]!(value);
        if (cell === undefined) return undefined;
      }
      line += i === 0 ? cell : `\t${cell}`;
    }
    return `${line}\n`;
  };
  return state;
}

/**
 * The whole source row as JSON for the quarantine, byte-exact: blobs as {"$blob":"hex"}, text that is
 * not valid UTF-8 as {"$bytes":"hex"}, integers as exact JSON numbers, rowid under "$rowid".
 */
export function rowToQuarantineJson(
  columns: readonly ColumnPlan[],
  row: readonly unknown[],
  rawText: RawText,
): string {
  const parts: string[] = [`"$rowid":${row[0] === null ? "null" : String(row[0])}`];
  columns.forEach((column, i) => {
    const value = row[i + 1];
    let json: string;
    if (value === null || value === undefined) json = "null";
    else if (Buffer.isBuffer(value)) json = `{"$blob":"${value.toString("hex")}"}`;
    else if (typeof value === "bigint") json = value.toString();
    else if (typeof value === "number")
      json = Number.isFinite(value) ? String(value) : JSON.stringify(String(value));
    else if (typeof value === "string") {
      const raw = value.includes("\ufffd") ? rawText(i, row) : null;
      let valid = true;
      if (raw) {
        try {
          strictUtf8.decode(raw);
        } catch {
          valid = false;
        }
      }
      json = valid ? JSON.stringify(value) : `{"$bytes":"${raw!.toString("hex")}"}`;
    } else json = JSON.stringify(value);
    parts.push(`${JSON.stringify(column.sourceName)}:${json}`);
  });
  return `{${parts.join(",")}}`;
}
