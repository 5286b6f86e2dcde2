import { loadModule, parseSync } from "libpg-query";
import { quoteIdent } from "../pg/quote.ts";
import { type SqliteToken, tokenizeSqlite } from "../sources/sqlite/sqlite-tokens.ts";
import type { Conversion } from "./type-mapping.ts";

/** The PostgreSQL parser is WebAssembly; load it once before translating. */
export async function loadSqlParser(): Promise<void> {
  await loadModule();
}

export type Translation = { ok: true; sql: string } | { ok: false; reason: string };

export interface ColumnRefTarget {
  target: string;
  conversion: Conversion;
}

export interface ExpressionContext {
  /** Source column names, lower-cased, of the table the expression belongs to. */
  columns: ReadonlyMap<string, ColumnRefTarget>;
}

/** Functions whose SQLite and PostgreSQL meanings agree for the arguments SQLite tables hold. */
const SAME_FUNCTIONS = new Set([
  "lower",
  "upper",
  "length",
  "abs",
  "coalesce",
  "nullif",
  "trim",
  "ltrim",
  "rtrim",
  "replace",
  "substr",
  "max",
  "min",
  "count",
  "sum",
  "avg",
]);
const RENAMED_FUNCTIONS: Record<string, string> = {
  ifnull: "coalesce",
  substring: "substr",
  group_concat: "",
};

/** Words that keep their meaning in both dialects (never names of a column being referenced). */
const KEYWORDS = new Set(
  (
    "and or not null is in between case when then else end cast as true false like escape exists distinct " +
    "all any some select from where group by having order asc desc limit offset join inner left outer cross " +
    "on using union intersect except natural integer int bigint text real numeric varchar char boolean " +
    "double precision with recursive current_timestamp current_date current_time nulls first last collate glob regexp match ilike"
  ).split(" "),
);

/** Conversions that change a column's value domain, so that SQLite expressions over it lose their meaning. */
const DOMAIN_CHANGING: ReadonlySet<Conversion> = new Set<Conversion>(["epoch-s", "epoch-ms", "jsonb"]);

export function followedByParen(tokens: readonly SqliteToken[], i: number): boolean {
  const next = tokens[i + 1];
  return next?.kind === "punct" && next.value === "(";
}

export interface Rewritten {
  text: string;
  problem?: string;
}

/**
 * Rewrites SQLite tokens into PostgreSQL text: names mapped and quoted, `==` -> `=`, LIKE -> ILIKE
 * (SQLite's LIKE ignores ASCII case), blob literals -> bytea. Gaps between tokens are kept verbatim.
 */
export function rewriteTokens(
  sql: string,
  resolve: (token: SqliteToken, index: number, tokens: readonly SqliteToken[]) => string | undefined | Error,
): Rewritten {
  const tokens = tokenizeSqlite(sql);
  let text = "";
  let cursor = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    text += sql.slice(cursor, t.start);
    cursor = t.end;
    const original = sql.slice(t.start, t.end);
    const resolved = resolve(t, i, tokens);
    if (resolved instanceof Error) return { text, problem: resolved.message };
    if (resolved !== undefined) {
      text += resolved;
      continue;
    }
    if (t.kind === "punct" && t.value === "==") text += "=";
    else if (t.kind === "blob") text += `'\\x${t.value.slice(2, -1)}'::bytea`;
    else if (t.kind === "ident" && t.value.toUpperCase() === "LIKE") text += "ILIKE";
    else if (t.kind === "ident" && ["GLOB", "REGEXP", "MATCH"].includes(t.value.toUpperCase()))
      return {
        text,
        problem: `${t.value.toUpperCase()} has no exact PostgreSQL equivalent`,
      };
    else text += original;
  }
  text += sql.slice(cursor);
  return { text };
}

export function parseProblem(sql: string): string | undefined {
  try {
    parseSync(sql);
    return undefined;
  } catch (error) {
    return `not valid PostgreSQL syntax (${(error as Error).message})`;
  }
}

function functionProblem(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (SAME_FUNCTIONS.has(lower)) return undefined;
  if (lower in RENAMED_FUNCTIONS && RENAMED_FUNCTIONS[lower]) return undefined;
  return `function ${name}() has no PostgreSQL equivalent with the same meaning`;
}

/**
 * Translates a SQLite expression (CHECK, DEFAULT, index term, partial-index WHERE) into PostgreSQL,
 * or says why it cannot: the result is parsed by the real PostgreSQL parser before it is accepted.
 * Comparisons of a column converted to boolean with 0/1 become comparisons with false/true.
 *
 *   translateExpression(`"qty" >= 0 AND name LIKE 'a%'`, ctx) -> { ok: true, sql: `"qty" >= 0 AND "name" ILIKE 'a%'` }
 */
export function translateExpression(sql: string, context: ExpressionContext): Translation {
  const rewritten = rewriteTokens(sql, (t, i, tokens) => {
    if (t.kind !== "ident" && t.kind !== "quoted") return undefined;
    if (
      t.kind === "ident" &&
      KEYWORDS.has(t.value.toLowerCase()) &&
      !context.columns.has(t.value.toLowerCase())
    )
      return undefined;
    if (t.kind === "ident" && followedByParen(tokens, i)) {
      const problem = functionProblem(t.value);
      if (problem) return new Error(problem);
      return RENAMED_FUNCTIONS[t.value.toLowerCase()] ?? t.value.toLowerCase();
    }
    const column = context.columns.get(t.value.toLowerCase());
    if (column) {
      if (DOMAIN_CHANGING.has(column.conversion))
        return new Error(`refers to column ${t.value}, whose values were converted (${column.conversion})`);
      return quoteIdent(column.target);
    }
    if (t.kind === "quoted")
      return new Error(`"${t.value}" is neither a column nor valid as a string literal in PostgreSQL`);
    if (KEYWORDS.has(t.value.toLowerCase())) return undefined;
    return new Error(`unknown name ${t.value}`);
  });
  if (rewritten.problem) return { ok: false, reason: rewritten.problem };
  const problem = parseProblem(`select ${rewritten.text}`);
  if (problem) return { ok: false, reason: problem };
  const booleans = new Set(
    [...context.columns.values()].filter((c) => c.conversion === "boolean").map((c) => c.target),
  );
  return { ok: true, sql: fixBooleanComparisons(rewritten.text, booleans) };
}

type Node = Record<string, unknown>;

function* walk(node: unknown): Generator<Node> {
  if (Array.isArray(node)) {
    for (const item of node) yield* walk(item);
    return;
  }
  if (node === null || typeof node !== "object") return;
  yield node as Node;
  for (const value of Object.values(node)) yield* walk(value);
}

function columnRefName(node: unknown): string | undefined {
  const ref = (node as { ColumnRef?: { fields?: { String?: { sval: string } }[] } })?.ColumnRef;
  const fields = ref?.fields;
  return fields?.[fields.length - 1]?.String?.sval;
}

function intConst(node: unknown): { value: number; location: number } | undefined {
  const c = (node as { A_Const?: { ival?: { ival?: number }; location: number } })?.A_Const;
  if (!c?.ival) return undefined;
  return { value: c.ival.ival ?? 0, location: c.location };
}

/** `"done" = 1` on a column now boolean -> `"done" = true` (found through the parse tree, edited by location). */
function fixBooleanComparisons(text: string, booleans: ReadonlySet<string>, prefix = "select "): string {
  if (booleans.size === 0) return text;
  const tree = parseSync(prefix + text);
  const edits: { at: number; length: number; value: string }[] = [];
  for (const node of walk(tree)) {
    const expr = node.A_Expr as { kind: string; lexpr?: unknown; rexpr?: unknown } | undefined;
    if (!expr) continue;
    const sides: [unknown, unknown][] = [
      [expr.lexpr, expr.rexpr],
      [expr.rexpr, expr.lexpr],
    ];
    for (const [columnSide, valueSide] of sides) {
      const name = columnRefName(columnSide);
      if (!name || !booleans.has(name)) continue;
      const values =
        expr.kind === "AEXPR_IN"
          ? ((valueSide as { List?: { items: unknown[] } })?.List?.items ?? [])
          : [valueSide];
      for (const value of values) {
        const constant = intConst(value);
        if (constant && (constant.value === 0 || constant.value === 1)) {
          edits.push({
            at: constant.location - prefix.length,
            length: 1,
            value: constant.value ? "true" : "false",
          });
        }
      }
    }
  }
  let result = text;
  for (const edit of edits.sort((a, b) => b.at - a.at)) {
    result = result.slice(0, edit.at) + edit.value + result.slice(edit.at + edit.length);
  }
  return result;
}
