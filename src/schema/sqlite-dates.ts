/**
 * SQLite's date and time functions (date, time, datetime, strftime, julianday, unixepoch) as
 * PostgreSQL expressions. SQLite computes in UTC on text, Julian day numbers or (with 'unixepoch')
 * seconds; the translation builds a `timestamp` (UTC, no zone) from the argument, applies the
 * modifiers, then formats it with to_char, so results are text exactly as SQLite returns them.
 */

/** What the time argument is, as far as the view's types tell. */
export type TimeArgument =
  | { kind: "now" }
  | { kind: "literal"; sql: string }
  | { kind: "text" | "number" | "timestamp" | "timestamptz" | "date" | "unknown"; sql: string };

export class DateTranslationError extends Error {
  readonly code = "date_not_translated";
}

const UNITS: Record<string, string> = {
  day: "days",
  days: "days",
  hour: "hours",
  hours: "hours",
  minute: "minutes",
  minutes: "minutes",
  second: "seconds",
  seconds: "seconds",
  month: "months",
  months: "months",
  year: "years",
  years: "years",
};

const STARTS: Record<string, string> = {
  "start of day": "day",
  "start of month": "month",
  "start of year": "year",
};

/** A `timestamp` expression (UTC) for the argument after its modifiers. */
export function timestampOf(argument: TimeArgument, modifiers: readonly string[]): string {
  const mods = modifiers.map((m) => m.trim().toLowerCase());
  let ts: string;
  if (mods[0] === "unixepoch") {
    mods.shift();
    if (argument.kind === "timestamptz") ts = `(${argument.sql} at time zone 'UTC')`;
    else if (argument.kind === "number" || argument.kind === "unknown" || argument.kind === "text")
      ts = `(to_timestamp((${argument.sql})::double precision) at time zone 'UTC')`;
    else throw new DateTranslationError(`'unixepoch' applied to a ${argument.kind} value`);
  } else {
    switch (argument.kind) {
      case "now":
        ts = "(current_timestamp at time zone 'UTC')";
        break;
      case "timestamp":
        ts = argument.sql;
        break;
      case "timestamptz":
        ts = `(${argument.sql} at time zone 'UTC')`;
        break;
      case "number":
        // A number is a Julian day number in SQLite.
        ts = `(to_timestamp(((${argument.sql}) - 2440587.5) * 86400) at time zone 'UTC')`;
        break;
      default:
        ts = `(${argument.sql})::timestamp`;
    }
  }
  for (const mod of mods) {
    const start = STARTS[mod];
    if (start) {
      ts = `date_trunc('${start}', ${ts})`;
      continue;
    }
    const shift = /^([+-])\s*(\d+(?:\.\d+)?)\s+([a-z]+)$/.exec(mod);
    const unit = shift ? UNITS[shift[3]!] : undefined;
    if (!shift || !unit) throw new DateTranslationError(`date modifier '${mod}' is not translated`);
    ts = `(${ts} ${shift[1]} interval '${shift[2]} ${unit}')`;
  }
  return ts;
}

const FORMAT_CODES: Record<string, string> = {
  d: "DD",
  H: "HH24",
  j: "DDD",
  m: "MM",
  M: "MI",
  S: "SS",
  Y: "YYYY",
  f: "SS.MS",
};

/** strftime(format, ...) for a timestamp expression: to_char with the format translated. */
export function formatTimestamp(ts: string, format: string): string {
  if (format === "%s") return `(floor(extract(epoch from ${ts})))::bigint::text`;
  if (format === "%w") return `(extract(dow from ${ts}))::int::text`;
  if (/["\\]/.test(format)) throw new DateTranslationError(`strftime format '${format}' is not translated`);
  let pattern = "";
  let literal = "";
  const flush = () => {
    if (literal) pattern += `"${literal.replace(/'/g, "''")}"`;
    literal = "";
  };
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== "%") {
      literal += c;
      continue;
    }
    const code = format[++i];
    if (code === "%") {
      literal += "%";
      continue;
    }
    const mapped = code === undefined ? undefined : FORMAT_CODES[code];
    if (!mapped) throw new DateTranslationError(`strftime format %${code ?? ""} is not translated`);
    flush();
    pattern += mapped;
  }
  flush();
  return `to_char(${ts}, '${pattern}')`;
}

/** The whole call: `name(args...)` with the time argument and the modifier strings already known. */
export function translateDateCall(
  name: "date" | "time" | "datetime" | "strftime" | "julianday" | "unixepoch",
  argument: TimeArgument,
  modifiers: readonly string[],
  format?: string,
): string {
  const ts = timestampOf(argument, modifiers);
  switch (name) {
    case "date":
      return `to_char(${ts}, 'YYYY-MM-DD')`;
    case "time":
      return `to_char(${ts}, 'HH24:MI:SS')`;
    case "datetime":
      return `to_char(${ts}, 'YYYY-MM-DD HH24:MI:SS')`;
    case "julianday":
      return `(extract(epoch from ${ts}) / 86400 + 2440587.5)::double precision`;
    case "unixepoch":
      return `(floor(extract(epoch from ${ts})))::bigint`;
    case "strftime":
      return formatTimestamp(ts, format ?? "");
  }
}
