/**
 * Canonical text of dates and timestamps, exactly as PostgreSQL prints them with DateStyle ISO and
 * TimeZone UTC: "2024-01-02", "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05+00" (fractional
 * zeros trimmed, "BC" suffix before year 1). Computed with integer arithmetic, microsecond exact.
 */

/** A point in time: whole seconds since 1970-01-01 00:00:00 (UTC or naive) and microseconds 0..999999. */
export interface Instant {
  seconds: number;
  micros: number;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (year 0 = 1 BC). H. Hinnant's days_from_civil. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The inverse of daysFromCivil. */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [month <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, month, day];
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

function dateParts(days: number): { text: string; bc: boolean } {
  const [year, month, day] = civilFromDays(days);
  const bc = year <= 0;
  const shown = bc ? 1 - year : year;
  return { text: `${String(shown).padStart(4, "0")}-${pad2(month)}-${pad2(day)}`, bc };
}

/** `date` text: "2024-01-02", "0001-01-01 BC". */
export function dateText(days: number): string {
  const { text, bc } = dateParts(days);
  return bc ? `${text} BC` : text;
}

function timeOfDay(secondsOfDay: number, micros: number): string {
  const h = Math.floor(secondsOfDay / 3600);
  const m = Math.floor((secondsOfDay % 3600) / 60);
  const s = secondsOfDay % 60;
  const fraction = micros === 0 ? "" : `.${String(micros).padStart(6, "0").replace(/0+$/, "")}`;
  return `${pad2(h)}:${pad2(m)}:${pad2(s)}${fraction}`;
}

/** `timestamp` text (naive) or `timestamptz` text in UTC (`withZone`: "+00" before any "BC"). */
export function timestampText(instant: Instant, withZone: boolean): string {
  const days = Math.floor(instant.seconds / 86400);
  const secondsOfDay = instant.seconds - days * 86400;
  const { text, bc } = dateParts(days);
  return `${text} ${timeOfDay(secondsOfDay, instant.micros)}${withZone ? "+00" : ""}${bc ? " BC" : ""}`;
}

/** C rint(): round half to even, as PostgreSQL rounds fractional seconds. */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const ISO =
  /^\s*(\d{4,})-(\d{1,2})-(\d{1,2})(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?\s*$/;

export interface ParsedDateTime {
  /** Local wall-clock instant as written (zone not applied). */
  local: Instant;
  /** Zone offset in seconds east of UTC, when the text names one ("Z" is 0). */
  offsetSeconds?: number;
  /** The text had a time part. */
  hasTime: boolean;
}

/**
 * Parses ISO-8601-style text the way PostgreSQL's datetime input accepts the common forms:
 * "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS[.fff...]]", "T" or space separator, optional "Z", "+HH",
 * "+HHMM" or "+HH:MM". Fractional seconds are rounded to microseconds like PostgreSQL (rint of the
 * double). Returns undefined for anything else (the verifier then reports the value as unconvertible).
 */
export function parseIsoDateTime(text: string): ParsedDateTime | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  const hour = m[4] === undefined ? 0 : Number(m[4]);
  const minute = m[5] === undefined ? 0 : Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (hour > 24 || minute > 59 || second > 60) return undefined;
  let micros = m[7] === undefined ? 0 : rint(Number(`0${m[7]}`) * 1_000_000);
  let seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  if (micros >= 1_000_000) {
    seconds += 1;
    micros -= 1_000_000;
  }
  const parsed: ParsedDateTime = { local: { seconds, micros }, hasTime: m[4] !== undefined };
  if (m[8]) parsed.offsetSeconds = 0;
  else if (m[9]) {
    const offset = Number(m[10]) * 3600 + (m[11] === undefined ? 0 : Number(m[11]) * 60);
    parsed.offsetSeconds = m[9] === "-" ? -offset : offset;
  }
  return parsed;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The UTC instant of parsed text; naive text is taken as UTC (pgshift imports with TimeZone UTC). */
export function toUtc(parsed: ParsedDateTime): Instant {
  return {
    seconds: parsed.local.seconds - (parsed.offsetSeconds ?? 0),
    micros: parsed.local.micros,
  };
}

/** An instant from a unix epoch number in seconds or milliseconds (fractions rounded to microseconds). */
export function instantFromEpoch(value: number | bigint, unit: "s" | "ms"): Instant | undefined {
  if (typeof value === "bigint") {
    const perSecond = unit === "s" ? 1n : 1000n;
    let seconds = value / perSecond;
    let rest = value % perSecond;
    if (rest < 0n) {
      seconds -= 1n;
      rest += perSecond;
    }
    if (seconds > BigInt(Number.MAX_SAFE_INTEGER) || seconds < BigInt(-Number.MAX_SAFE_INTEGER))
      return undefined;
    return { seconds: Number(seconds), micros: Number(rest) * (unit === "s" ? 0 : 1000) };
  }
  if (!Number.isFinite(value)) return undefined;
  if (Number.isInteger(value)) return instantFromEpoch(BigInt(value), unit);
  const totalMicros = rint(value * (unit === "s" ? 1_000_000 : 1_000));
  const seconds = Math.floor(totalMicros / 1_000_000);
  return { seconds, micros: totalMicros - seconds * 1_000_000 };
}
