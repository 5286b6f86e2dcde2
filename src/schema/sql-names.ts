import { quoteIdent, quoteLiteral } from "../pg/quote.ts";
import { type Node, nodeKind, type Replacement, type SqlText, walk } from "./sql-rewrite.ts";
import type { ViewColumn } from "./sqlite-idioms.ts";

/**
 * Names in parsed SQLite SQL, resolved the way SQLite does (case-insensitively, through FROM
 * aliases) and rewritten to their PostgreSQL names, quoted: relations, column references, the
 * columns an UPDATE sets or an INSERT lists, and output aliases (quoted so `AS TotalSales` keeps its
 * case as a view column name).
 */

/** A relation of the import (table, or view created before), as SQL that refers to it sees it. */
export interface SqlRelation {
  target: string;
  /** By lower-cased source column name. */
  columns: ReadonlyMap<string, ViewColumn>;
}

interface AliasEntry {
  /** Quoted text a qualifier is rewritten to; undefined: keep as written. */
  quoted?: string;
  relation?: SqlRelation;
  /** Only through a qualifier (a trigger's NEW and OLD), never for an unqualified name. */
  qualifiedOnly?: boolean;
}

/** A column a SELECT returns: the name SQL over it uses (`source`), its target name, its type if known. */
export interface OutputColumn {
  source: string;
  name: string;
  column?: ViewColumn;
}

export interface ResolvedNames {
  replacements: Replacement[];
  columnOf: (ref: Node) => ViewColumn | undefined;
  /** The first SELECT's output columns (name and, where it is a plain column, its type), when known. */
  outputColumns: OutputColumn[];
}

function fieldNames(ref: Node): (string | null)[] {
  return (ref.fields as { String?: { sval: string } }[]).map((f) => f.String?.sval ?? null);
}

function unquoted(token: string): string {
  return token.startsWith('"') ? token.slice(1, -1).replace(/""/g, '"') : token;
}

/**
 * Resolves every name in `tree` (parsed from `text`). `extra` adds qualifiers (a trigger's NEW/OLD).
 * Relations not in `relations` (CTEs, unknown names) are left as written.
 */
export function resolveNames(
  tree: unknown,
  text: SqlText,
  relations: ReadonlyMap<string, SqlRelation>,
  extra: ReadonlyMap<string, SqlRelation> = new Map(),
  /** The naming policy, for the names a SELECT gives its columns (AS ...). */
  naming: (name: string) => string = (name) => name,
): ResolvedNames {
  const replacements: Replacement[] = [];
  const aliases = new Map<string, AliasEntry>();
  for (const [name, relation] of extra) aliases.set(name, { relation, qualifiedOnly: true });
  const token = (index: number, value: string) =>
    replacements.push({ ...text.span(index, index), build: () => value });
  let subqueries = 0;
  const registerRange = (range: Node) => {
    const name = (range.relname as string).toLowerCase();
    const relation = relations.get(name);
    const alias = (range.alias as { aliasname?: string } | undefined)?.aliasname;
    const at = text.tokenAt(range.location as number);
    if (relation && at !== undefined) {
      // `main.t` (SQLite's schema name) -> the target table, in the search path.
      const last = range.schemaname ? at + 2 : at;
      replacements.push({ ...text.span(at, last), build: () => quoteIdent(relation.target) });
    }
    const key = (alias ?? name).toLowerCase();
    aliases.set(key, {
      ...(relation ? { relation } : {}),
      ...(alias === undefined && relation ? { quoted: quoteIdent(relation.target) } : {}),
    });
  };

  for (const node of walk(tree)) {
    const kind = nodeKind(node);
    // The target of UPDATE / INSERT / DELETE is a RangeVar without its node wrapper.
    if (kind && ["UpdateStmt", "InsertStmt", "DeleteStmt"].includes(kind[0]) && kind[1].relation)
      registerRange(kind[1].relation as Node);
    if (kind?.[0] === "RangeVar") registerRange(kind[1]);
    else if (kind?.[0] === "RangeSubselect") {
      const alias = (kind[1].alias as { aliasname?: string } | undefined)?.aliasname;
      if (alias) aliases.set(alias.toLowerCase(), {});
      else {
        // SQLite allows a subquery in FROM without a name; PostgreSQL before 16 does not.
        const extent = text.extent(kind[1].subquery);
        if (!extent) continue;
        let i = text.tokens.findIndex((t) => t.end === extent.end);
        let depth = 0;
        for (i++; i < text.tokens.length; i++) {
          if (text.is(i, "(")) depth++;
          else if (text.is(i, ")") && depth-- === 0) break;
        }
        const alias = `pgshift_subquery_${++subqueries}`;
        if (i < text.tokens.length) token(i, `) as ${alias}`);
      }
    } else if (kind?.[0] === "CommonTableExpr") {
      aliases.set((kind[1].ctename as string).toLowerCase(), {});
    }
  }

  const outputAliases = new Map<string, string>();
  const writtenAliases = new Map<Node, string>();
  const firstSelect = (() => {
    let select = nodeKind((tree as { stmts?: { stmt: unknown }[] }).stmts?.[0]?.stmt)?.[1];
    while (select && select.op && select.op !== "SETOP_NONE")
      select = (select.larg as Node | undefined) ?? undefined;
    return select;
  })();
  const outputColumns: ResolvedNames["outputColumns"] = [];

  const lookup = (ref: Node): { column?: ViewColumn; entry?: AliasEntry } => {
    const names = fieldNames(ref);
    const column = names[names.length - 1];
    if (names.length === 2 && names[0] !== null) {
      const entry = aliases.get(names[0].toLowerCase());
      return {
        ...(entry ? { entry } : {}),
        ...(column && entry?.relation ? { column: entry.relation.columns.get(column.toLowerCase()) } : {}),
      };
    }
    if (names.length !== 1 || column === null || column === undefined) return {};
    const candidates = [...aliases.values()]
      .filter((e) => !e.qualifiedOnly && e.relation)
      .map((e) => e.relation!.columns.get(column.toLowerCase()))
      .filter((c) => c !== undefined);
    const [first] = candidates;
    if (!first) return {};
    return candidates.every((c) => c.target === first.target && c.pgType === first.pgType)
      ? { column: first }
      : {};
  };

  for (const node of walk(tree)) {
    const kind = nodeKind(node);
    if (kind?.[0] === "SelectStmt") {
      for (const item of (kind[1].targetList as { ResTarget: Node }[] | undefined) ?? []) {
        const target = item.ResTarget;
        if (typeof target.name !== "string") continue;
        const extent = text.extent(target.val);
        if (!extent) continue;
        let i = text.tokens.findIndex((t) => t.end === extent.end) + 1;
        if (text.is(i, "as")) i++;
        const written = text.tokens[i]?.text;
        if (!written) continue;
        const name = unquoted(written);
        // The parser's own reading of the alias confirms the token found is the alias.
        if ((written.startsWith('"') ? name : name.toLowerCase()) !== target.name) continue;
        const renamed = naming(name);
        outputAliases.set(name.toLowerCase(), quoteIdent(renamed));
        writtenAliases.set(target, name);
        if (!written.startsWith('"') || renamed !== name) token(i, quoteIdent(renamed));
      }
    }
  }

  const allKnown = () => [...aliases.values()].every((e) => e.qualifiedOnly || e.relation);
  for (const node of walk(tree)) {
    const kind = nodeKind(node);
    if (kind?.[0] !== "ColumnRef") continue;
    const ref = kind[1];
    const at = text.tokenAt(ref.location as number);
    if (at === undefined) continue;
    const names = fieldNames(ref);
    const { column, entry } = lookup(ref);
    if (names.length === 2 && entry?.quoted) token(at, entry.quoted);
    const last = at + 2 * (names.length - 1);
    if (names[names.length - 1] === null) continue;
    if (column) token(last, quoteIdent(column.target));
    else if (names.length === 1 || (entry && !entry.relation)) {
      // A name a SELECT gave (an output alias, or a subquery's column).
      const alias = outputAliases.get(names[names.length - 1]!.toLowerCase());
      if (alias) token(last, alias);
      else if (names.length === 1 && text.tokens[at]!.text.startsWith('"') && allKnown())
        // SQLite reads a double-quoted name that is no column as a string literal.
        token(at, quoteLiteral(names[0]!));
    }
  }

  // The columns an UPDATE sets and an INSERT lists belong to its target table.
  for (const node of walk(tree)) {
    const kind = nodeKind(node);
    if (kind?.[0] !== "UpdateStmt" && kind?.[0] !== "InsertStmt") continue;
    const relation = relations.get(((kind[1].relation as Node).relname as string).toLowerCase());
    const targets = (kind[0] === "UpdateStmt" ? kind[1].targetList : kind[1].cols) as
      { ResTarget: Node }[] | undefined;
    for (const { ResTarget: target } of targets ?? []) {
      const column = relation?.columns.get((target.name as string).toLowerCase());
      const at = text.tokenAt(target.location as number);
      if (column && at !== undefined) token(at, quoteIdent(column.target));
    }
  }

  if (firstSelect) {
    for (const { ResTarget: target } of (firstSelect.targetList as { ResTarget: Node }[] | undefined) ?? []) {
      const ref = nodeKind(target.val);
      if (typeof target.name === "string") {
        const column = ref?.[0] === "ColumnRef" ? lookup(ref[1]).column : undefined;
        const source = writtenAliases.get(target) ?? target.name;
        outputColumns.push({ source, name: naming(source), ...(column ? { column } : {}) });
        continue;
      }
      if (ref?.[0] !== "ColumnRef") continue;
      const names = fieldNames(ref[1]);
      if (names[names.length - 1] === null) {
        const from = names.length === 2 ? [aliases.get(names[0]!.toLowerCase())] : [...aliases.values()];
        for (const e of from)
          if (e?.relation && !e.qualifiedOnly)
            for (const [source, c] of e.relation.columns)
              outputColumns.push({ source, name: c.target, column: c });
        continue;
      }
      const { column } = lookup(ref[1]);
      if (column) outputColumns.push({ source: names[names.length - 1]!, name: column.target, column });
    }
  }

  return { replacements, columnOf: (ref) => lookup(ref).column, outputColumns };
}
