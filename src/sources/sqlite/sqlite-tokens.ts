/**
 * A tokenizer for the parts of SQLite's own DDL that its PRAGMAs do not expose (CHECK bodies, column
 * COLLATE clauses, AUTOINCREMENT, index expressions and WHERE clauses). It splits text into tokens and
 * top-level comma lists; it does not interpret expressions: those go to the PostgreSQL parser later.
 */
export interface SqliteToken {
  kind: "ident" | "quoted" | "string" | "number" | "punct" | "blob";
  /** The identifier's name (unquoted), or the token's text. */
  value: string;
  start: number;
  end: number;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;

export function tokenizeSqlite(sql: string): SqliteToken[] {
  const tokens: SqliteToken[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      while (i < sql.length && sql[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
      continue;
    }
    const start = i;
    if ((c === "x" || c === "X") && sql[i + 1] === "'") {
      const end = sql.indexOf("'", i + 2);
      i = end < 0 ? sql.length : end + 1;
      tokens.push({ kind: "blob", value: sql.slice(start, i), start, end: i });
      continue;
    }
    if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      let value = "";
      i++;
      while (i < sql.length) {
        if (sql[i] === close) {
          if (close !== "]" && sql[i + 1] === close) {
            value += close;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += sql[i];
        i++;
      }
      tokens.push({
        kind: c === "'" ? "string" : "quoted",
        value,
        start,
        end: i,
      });
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(sql[i + 1] ?? ""))) {
      while (i < sql.length && /[0-9A-Za-z_.]/.test(sql[i]!)) {
        if ((sql[i] === "e" || sql[i] === "E") && /[+-]/.test(sql[i + 1] ?? "")) i++;
        i++;
      }
      tokens.push({
        kind: "number",
        value: sql.slice(start, i),
        start,
        end: i,
      });
      continue;
    }
    if (IDENT_START.test(c)) {
      while (i < sql.length && IDENT_PART.test(sql[i]!)) i++;
      tokens.push({ kind: "ident", value: sql.slice(start, i), start, end: i });
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (["<=", ">=", "<>", "!=", "==", "||", "<<", ">>"].includes(two)) {
      tokens.push({ kind: "punct", value: two, start, end: i + 2 });
      i += 2;
      continue;
    }
    tokens.push({ kind: "punct", value: c, start, end: i + 1 });
    i++;
  }
  return tokens;
}

/** True when the token is the (unquoted) keyword `word`, case-insensitively. */
export function isKeyword(token: SqliteToken | undefined, word: string): boolean {
  return token?.kind === "ident" && token.value.toUpperCase() === word;
}

/** Index of the `)` matching the `(` at `open`. */
export function matchingParen(tokens: readonly SqliteToken[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "punct") continue;
    if (t.value === "(") depth++;
    else if (t.value === ")") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return tokens.length - 1;
}

/** Splits tokens[from, to) at top-level commas. */
export function splitTopLevel(tokens: readonly SqliteToken[], from: number, to: number): SqliteToken[][] {
  const parts: SqliteToken[][] = [];
  let current: SqliteToken[] = [];
  let depth = 0;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind === "punct" && t.value === "(") depth++;
    if (t.kind === "punct" && t.value === ")") depth--;
    if (depth === 0 && t.kind === "punct" && t.value === ",") {
      parts.push(current);
      current = [];
      continue;
    }
    current.push(t);
  }
  if (current.length) parts.push(current);
  return parts;
}

/** The source text spanned by tokens[from..to] inclusive. */
export function textOf(sql: string, tokens: readonly SqliteToken[], from: number, to: number): string {
  if (to < from) return "";
  return sql.slice(tokens[from]!.start, tokens[to]!.end);
}
