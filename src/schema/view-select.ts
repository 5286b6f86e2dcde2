import { parseSync } from "libpg-query";
import { quoteIdent } from "../pg/quote.ts";
import { type SqliteToken, tokenizeSqlite } from "../sources/sqlite/sqlite-tokens.ts";
import { followedByParen, parseProblem, rewriteTokens } from "./expression.ts";
import { type OutputColumn, resolveNames, type SqlRelation } from "./sql-names.ts";
import { applyReplacements, OverlappingEdits, SqlText } from "./sql-rewrite.ts";
import { IdiomError, idiomReplacements } from "./sqlite-idioms.ts";

export type { OutputColumn, SqlRelation } from "./sql-names.ts";
export type { ViewColumn } from "./sqlite-idioms.ts";

export interface ViewContext {
  /** Source tables and (earlier) views, by lower-cased name: target name and columns with their types. */
  relations: ReadonlyMap<string, SqlRelation>;
  /** The collation SQLite's COLLATE NOCASE becomes (absent: no ICU on the server, reported). */
  nocaseCollation?: string;
  /** The naming policy for the view's own column names (default: kept as written). */
  naming?: (name: string) => string;
}

export type ViewTranslation =
  { ok: true; sql: string; columns: OutputColumn[] } | { ok: false; reason: string };

/**
 * SQLite's quoted names (`"x"`, `[x]`, `` `x` ``) as PostgreSQL's, `==` as `=`, LIKE as ILIKE (SQLite's
 * LIKE ignores ASCII case); unquoted names are resolved later, on the parse tree.
 */
export function normalizeSqliteText(sql: string): ReturnType<typeof rewriteTokens> {
  const rewrites = grammarRewrites(tokenizeSqlite(sql));
  return rewriteTokens(sql, (t, i, tokens) => {
    const rewrite = rewrites.get(i);
    if (rewrite !== undefined) return rewrite;
    if (t.kind === "quoted") return quoteIdent(t.value);
    // COLLATE BINARY: binary is a keyword to PostgreSQL's grammar.
    if (
      t.kind === "ident" &&
      tokens[i - 1]?.kind === "ident" &&
      tokens[i - 1]!.value.toUpperCase() === "COLLATE"
    )
      return quoteIdent(t.value.toLowerCase());
    // time(...) and char(...) are type names to PostgreSQL's grammar; quoted, they are function calls.
    if (t.kind === "ident" && GRAMMAR_TYPE_NAMES.has(t.value.toLowerCase()) && followedByParen(tokens, i))
      return quoteIdent(t.value.toLowerCase());
    return undefined;
  });
}

const GRAMMAR_TYPE_NAMES = new Set(["time", "char", "timestamp"]);
const IS_OPERANDS = new Set(["NULL", "TRUE", "FALSE", "UNKNOWN", "DISTINCT", "NOT"]);

/**
 * SQLite syntax PostgreSQL's grammar rejects, by token index: `a IS b` / `a IS NOT b` (null-safe
 * comparison) -> IS [NOT] DISTINCT FROM, `LIMIT offset, count` -> LIMIT count OFFSET offset.
 */
function grammarRewrites(tokens: readonly SqliteToken[]): Map<number, string> {
  const rewrites = new Map<number, string>();
  const word = (i: number) => (tokens[i]?.kind === "ident" ? tokens[i]!.value.toUpperCase() : undefined);
  for (let i = 0; i < tokens.length; i++) {
    if (word(i) === "IS") {
      const negated = word(i + 1) === "NOT";
      const operand = word(negated ? i + 2 : i + 1);
      if (operand !== undefined && IS_OPERANDS.has(operand) && !(negated && operand === "NOT")) continue;
      rewrites.set(i, negated ? "IS DISTINCT FROM" : "IS NOT DISTINCT FROM");
      if (negated) rewrites.set(i + 1, "");
    } else if (
      word(i) === "LIMIT" &&
      tokens[i + 1]?.kind === "number" &&
      tokens[i + 2]?.value === "," &&
      tokens[i + 3]?.kind === "number"
    ) {
      rewrites.set(i, `LIMIT ${tokens[i + 3]!.value} OFFSET ${tokens[i + 1]!.value}`);
      for (const k of [1, 2, 3]) rewrites.set(i + k, "");
    }
  }
  return rewrites;
}

/**
 * Translates a view's SELECT: parsed by the PostgreSQL parser, names resolved as SQLite resolves
 * them (sql-names.ts), SQLite idioms rewritten (sqlite-idioms.ts), and the result parsed again.
 * Whether PostgreSQL accepts every function and operator is known only when the view is created;
 * a failure there is reported with the view's SQL.
 *
 *   translateViewSelect("SELECT ifnull(name, '-') AS Name FROM t", ctx)
 *   -> { ok: true, sql: `SELECT coalesce("name", '-') AS "Name" FROM "t"`, columns: [...] }
 */
export function translateViewSelect(sql: string, context: ViewContext): ViewTranslation {
  const normalized = normalizeSqliteText(sql);
  if (normalized.problem) return { ok: false, reason: normalized.problem };
  const problem = parseProblem(normalized.text);
  if (problem) return { ok: false, reason: problem };
  const tree = parseSync(normalized.text);
  let translated: string;
  let columns: OutputColumn[];
  try {
    const text = new SqlText(normalized.text);
    const names = resolveNames(tree, text, context.relations, new Map(), context.naming);
    columns = names.outputColumns;
    const idioms = idiomReplacements(tree, {
      text,
      columnOf: names.columnOf,
      ...(context.nocaseCollation ? { nocaseCollation: context.nocaseCollation } : {}),
    });
    // Idioms first: where an idiom and a name cover the same text, the idiom wraps the renamed name.
    translated = applyReplacements(normalized.text, [...idioms, ...names.replacements]);
  } catch (error) {
    if (error instanceof IdiomError) return { ok: false, reason: error.message };
    if (error instanceof OverlappingEdits)
      return { ok: false, reason: `the view's SQL could not be rewritten safely (${error.message})` };
    throw error;
  }
  const after = parseProblem(translated);
  if (after) return { ok: false, reason: `the translation is ${after}` };
  return { ok: true, sql: translated, columns };
}
