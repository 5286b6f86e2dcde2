import { quoteLiteral } from "../pg/quote.ts";
import { tokenizeSqlite } from "../sources/sqlite/sqlite-tokens.ts";
import { type Translation, translateExpression } from "./expression.ts";
import type { Conversion } from "./type-mapping.ts";

const ISO_DATE_TIME =
  /^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** "CURRENT_TIMESTAMP" and friends in the target column's type, faithful to SQLite (which uses UTC). */
function nowFor(keyword: string, pgType: string, conversion: Conversion): Translation {
  if (conversion === "epoch-ms" || conversion === "epoch-s" || pgType === "timestamptz")
    return { ok: true, sql: "now()" };
  if (pgType === "timestamp") return { ok: true, sql: "(now() at time zone 'utc')" };
  if (pgType === "date") return { ok: true, sql: "((now() at time zone 'utc')::date)" };
  if (conversion === "text") {
    const format =
      keyword === "CURRENT_DATE"
        ? "YYYY-MM-DD"
        : keyword === "CURRENT_TIME"
          ? "HH24:MI:SS"
          : "YYYY-MM-DD HH24:MI:SS";
    return { ok: true, sql: `to_char(now() at time zone 'utc', '${format}')` };
  }
  return { ok: false, reason: `${keyword} into a ${pgType} column` };
}

/**
 * Translates a SQLite DEFAULT (as PRAGMA table_info reports it) for the chosen PostgreSQL column:
 * literals (converted like the column's values: 0/1 -> false/true, epochs -> timestamps),
 * CURRENT_TIMESTAMP / datetime('now') / unixepoch(), and simple expressions through the parser.
 * A double-quoted word is a string literal here, as SQLite reads it in a DEFAULT.
 */
export function translateDefault(sqliteDefault: string, pgType: string, conversion: Conversion): Translation {
  let text = sqliteDefault.trim();
  while (text.startsWith("(") && text.endsWith(")")) text = text.slice(1, -1).trim();
  const upper = text.toUpperCase();
  if (upper === "NULL") return { ok: true, sql: "null" };
  if (["CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"].includes(upper))
    return nowFor(upper, pgType, conversion);
  // A DEFAULT cannot name a column, so SQLite reads a double-quoted word there as a string literal
  // (`DEFAULT ""`, `DEFAULT "isbn"`): so does pgshift.
  const tokens = tokenizeSqlite(text).map((t) =>
    t.kind === "quoted" && text[t.start] === '"' ? { ...t, kind: "string" as const } : t,
  );
  const mentionsNow = tokens.some((t) => t.kind === "string" && t.value.toLowerCase() === "now");
  const callsClock = tokens.some(
    (t) =>
      t.kind === "ident" &&
      ["datetime", "strftime", "unixepoch", "julianday", "date"].includes(t.value.toLowerCase()),
  );
  if (callsClock && (mentionsNow || /unixepoch\s*\(\s*\)/i.test(text))) {
    if (
      conversion === "epoch-ms" ||
      conversion === "epoch-s" ||
      pgType === "timestamptz" ||
      pgType === "timestamp"
    )
      return nowFor("CURRENT_TIMESTAMP", pgType, conversion);
    if (/^datetime\s*\(\s*'now'\s*\)$/i.test(text) && conversion === "text")
      return nowFor("CURRENT_TIMESTAMP", pgType, conversion);
    return { ok: false, reason: `clock expression into a ${pgType} column` };
  }
  const numeric = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text);
  if (numeric) {
    switch (conversion) {
      case "boolean":
        if (text === "0" || text === "1") return { ok: true, sql: text === "1" ? "true" : "false" };
        return { ok: false, reason: `${text} is not 0 or 1` };
      case "epoch-s":
      case "epoch-ms": {
        if (!/^\d+$/.test(text)) return { ok: false, reason: `${text} is not an integer epoch` };
        const ms = conversion === "epoch-ms" ? Number(text) : Number(text) * 1000;
        return {
          ok: true,
          sql: `${quoteLiteral(new Date(ms).toISOString())}::timestamptz`,
        };
      }
      case "text":
        return { ok: true, sql: quoteLiteral(text) };
      case "integer":
      case "real":
      case "numeric":
        return { ok: true, sql: text };
      default:
        return { ok: false, reason: `number ${text} into a ${pgType} column` };
    }
  }
  if (tokens.length === 1 && tokens[0]!.kind === "string") {
    const value = tokens[0]!.value;
    switch (conversion) {
      case "text":
        return { ok: true, sql: quoteLiteral(value) };
      case "jsonb":
        try {
          JSON.parse(value);
          return { ok: true, sql: `${quoteLiteral(value)}::jsonb` };
        } catch {
          return { ok: false, reason: "string is not valid JSON" };
        }
      case "date":
      case "timestamp":
      case "timestamptz":
        return ISO_DATE_TIME.test(value)
          ? { ok: true, sql: `${quoteLiteral(value)}::${pgType}` }
          : { ok: false, reason: `'${value}' is not an ISO date` };
      case "bytea":
        return { ok: true, sql: `convert_to(${quoteLiteral(value)}, 'UTF8')` };
      case "integer":
      case "real":
      case "numeric":
        return {
          ok: false,
          reason: `string '${value}' into a ${pgType} column (SQLite would store it as text)`,
        };
      default:
        return { ok: false, reason: `string into a ${pgType} column` };
    }
  }
  if (tokens.length === 1 && tokens[0]!.kind === "blob" && conversion === "bytea")
    return { ok: true, sql: `'\\x${tokens[0]!.value.slice(2, -1)}'::bytea` };
  if (["TRUE", "FALSE"].includes(upper) && conversion === "boolean")
    return { ok: true, sql: upper.toLowerCase() };
  if (conversion !== "integer" && conversion !== "real" && conversion !== "numeric" && conversion !== "text")
    return { ok: false, reason: `expression into a ${pgType} column` };
  const translated = translateExpression(text, { columns: new Map() });
  return translated.ok ? { ok: true, sql: `(${translated.sql})` } : translated;
}
