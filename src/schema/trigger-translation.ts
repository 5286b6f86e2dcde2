import { createHash } from "node:crypto";
import { parsePlPgSQLSync, parseSync } from "libpg-query";
import { quoteIdent, quoteLiteral, quoteQualified } from "../pg/quote.ts";
import { isKeyword, tokenizeSqlite } from "../sources/sqlite/sqlite-tokens.ts";
import { parseProblem } from "./expression.ts";
import { resolveNames, type SqlRelation } from "./sql-names.ts";
import {
  applyReplacements,
  type Extent,
  type Node,
  nodeKind,
  OverlappingEdits,
  type Replacement,
  SqlText,
} from "./sql-rewrite.ts";
import { assignmentReplacements } from "./sqlite-assignments.ts";
import { IdiomError, idiomReplacements } from "./sqlite-idioms.ts";
import { normalizeSqliteText } from "./view-select.ts";

/**
 * SQLite triggers as PL/pgSQL trigger functions. The forms translated: BEFORE / AFTER / INSTEAD OF,
 * on INSERT, UPDATE [OF columns] or DELETE, FOR EACH ROW, an optional WHEN, and a body of UPDATE,
 * INSERT and DELETE statements using NEW and OLD. Each statement goes through the same idiom
 * translation as views. SQLite (recursive_triggers off, its default) never fires a trigger from
 * inside itself; PostgreSQL would, so an AFTER UPDATE trigger that updates its own table would
 * recurse forever: each function skips its body while it is already running (a transaction-local
 * setting, reverted with the transaction on error).
 */

export interface TriggerContext {
  schema: string;
  /** Source tables and views, by lower-cased name. */
  relations: ReadonlyMap<string, SqlRelation>;
  /** The trigger's table (or view). */
  table: SqlRelation;
  /** The target name for the trigger and its function. */
  name: string;
}

export interface TriggerSql {
  /** CREATE FUNCTION (PL/pgSQL). */
  functionSql: string;
  /** CREATE TRIGGER. */
  triggerSql: string;
  /**
   * The body's statements with NEW/OLD replaced by typed NULLs: EXPLAIN of each makes PostgreSQL
   * check names and types before the trigger exists (PL/pgSQL itself checks them only when it fires).
   */
  checkSql: string[];
}

export type TriggerTranslation = { ok: true; sql: TriggerSql } | { ok: false; reason: string };

class TriggerFormError extends Error {
  readonly code = "trigger_not_translated";
}

interface TriggerHeader {
  timing: "before" | "after" | "instead of";
  event: "insert" | "update" | "delete";
  updateOf: string[];
  when?: string;
  body: string[];
}

function parseHeader(sql: string): TriggerHeader {
  const tokens = tokenizeSqlite(sql);
  let i = 0;
  const expect = (word: string) => {
    if (!isKeyword(tokens[i], word)) throw new TriggerFormError(`expected ${word} in CREATE TRIGGER`);
    i++;
  };
  expect("CREATE");
  if (isKeyword(tokens[i], "TEMP") || isKeyword(tokens[i], "TEMPORARY"))
    throw new TriggerFormError("a TEMP trigger");
  expect("TRIGGER");
  if (isKeyword(tokens[i], "IF")) i += 3;
  i++;
  if (tokens[i]?.value === ".") i += 2;
  let timing: TriggerHeader["timing"] = "before";
  if (isKeyword(tokens[i], "BEFORE")) i++;
  else if (isKeyword(tokens[i], "AFTER")) {
    timing = "after";
    i++;
  } else if (isKeyword(tokens[i], "INSTEAD")) {
    timing = "instead of";
    i += 2;
  }
  const eventWord = tokens[i]?.value.toLowerCase();
  if (eventWord !== "insert" && eventWord !== "update" && eventWord !== "delete")
    throw new TriggerFormError(`trigger event ${tokens[i]?.value ?? "(none)"}`);
  i++;
  const updateOf: string[] = [];
  if (isKeyword(tokens[i], "OF")) {
    i++;
    while (tokens[i] && !isKeyword(tokens[i], "ON")) {
      if (tokens[i]!.value !== ",") updateOf.push(tokens[i]!.value);
      i++;
    }
  }
  expect("ON");
  i++;
  if (tokens[i]?.value === ".") i += 2;
  if (isKeyword(tokens[i], "FOR")) i += 3;
  let when: string | undefined;
  const begin = tokens.findIndex((t, k) => k >= i && isKeyword(t, "BEGIN"));
  if (begin < 0) throw new TriggerFormError("no BEGIN in CREATE TRIGGER");
  if (isKeyword(tokens[i], "WHEN")) when = sql.slice(tokens[i + 1]!.start, tokens[begin - 1]!.end);
  else if (i !== begin) throw new TriggerFormError(`unexpected ${tokens[i]?.value} before BEGIN`);
  let end = tokens.length - 1;
  if (tokens[end]?.value === ";") end--;
  if (!isKeyword(tokens[end], "END")) throw new TriggerFormError("no END closing the trigger body");
  const body: string[] = [];
  let from = begin + 1;
  for (let k = begin + 1; k < end; k++) {
    if (tokens[k]!.kind === "punct" && tokens[k]!.value === ";") {
      if (k > from) body.push(sql.slice(tokens[from]!.start, tokens[k - 1]!.end));
      from = k + 1;
    }
  }
  if (from < end) body.push(sql.slice(tokens[from]!.start, tokens[end - 1]!.end));
  if (body.length === 0) throw new TriggerFormError("an empty trigger body");
  return { timing, event: eventWord, updateOf, ...(when ? { when } : {}), body };
}

/** Translates one statement or expression, and the version of it EXPLAIN can check (NEW/OLD as typed NULLs). */
function translatePart(
  sql: string,
  ctx: TriggerContext,
  wrap: (text: string) => string,
  kinds: readonly string[],
  /** What RAISE(IGNORE) becomes (BEFORE triggers: skip the row); absent: not translatable here. */
  ignoreSql?: string,
): { sql: string; check: string } {
  const normalized = normalizeSqliteText(sql);
  if (normalized.problem) throw new TriggerFormError(normalized.problem);
  const text = wrap(normalized.text);
  const problem = parseProblem(text);
  if (problem) throw new TriggerFormError(problem);
  const tree = parseSync(text);
  const stmt = (tree.stmts?.[0]?.stmt ?? {}) as Node;
  const kind = Object.keys(stmt)[0];
  const raises =
    kind === "SelectStmt" && !kinds.includes(kind) ? raiseBranches(stmt.SelectStmt as Node) : undefined;
  if (tree.stmts?.length !== 1 || (!kinds.includes(kind ?? "") && !raises))
    throw new TriggerFormError(
      `a ${kind === "SelectStmt" ? "SELECT" : (kind ?? "statement")} in the trigger body (only INSERT, UPDATE, DELETE and SELECT RAISE(...) are translated)`,
    );
  const sqlText = new SqlText(text);
  const names = resolveNames(
    tree,
    sqlText,
    ctx.relations,
    new Map([
      ["new", ctx.table],
      ["old", ctx.table],
    ]),
  );
  const idiomCtx = { text: sqlText, columnOf: names.columnOf };
  const replacements: Replacement[] = [
    ...assignmentReplacements(
      tree,
      idiomCtx,
      (relation) => ctx.relations.get(relation.toLowerCase())?.columns,
    ),
    ...idiomReplacements(tree, idiomCtx),
  ];
  const whole = { start: 0, end: text.length };
  const condition = (node: unknown, render: (r: Extent) => string) => {
    if (node === undefined) return "true";
    const extent = sqlText.extent(node);
    if (!extent) throw new TriggerFormError("a RAISE condition whose extent is unknown");
    return `(${render(extent)})`;
  };
  const statement: Replacement[] = raises
    ? [
        {
          ...whole,
          build: (render) =>
            raises
              .map((b) => {
                if (b.action === "ignore" && ignoreSql === undefined)
                  throw new TriggerFormError("RAISE(IGNORE) outside a BEFORE or INSTEAD OF trigger");
                const action =
                  b.action === "ignore"
                    ? ignoreSql
                    : `raise exception using message = ${quoteLiteral(b.message!)};`;
                return `if ${condition(b.condition, render)} then ${action} end if`;
              })
              .join(";\n  "),
        },
      ]
    : [];
  const checking: Replacement[] = raises
    ? [
        {
          ...whole,
          // CASE WHEN takes only a boolean, as PL/pgSQL's IF does when the trigger fires.
          build: (render) =>
            `select ${raises.map((b) => `case when ${condition(b.condition, render)} then 1 end`).join(", ")}`,
        },
      ]
    : [];
  const translated = applyReplacements(text, [...statement, ...replacements, ...names.replacements]);
  const typedNulls: Replacement[] = [];
  const table = quoteQualified(ctx.schema, ctx.table.target);
  for (const node of walkColumnRefs(tree)) {
    const fields = node.fields as { String?: { sval: string } }[];
    const qualifier = fields[0]?.String?.sval;
    if (fields.length !== 2 || (qualifier !== "new" && qualifier !== "old")) continue;
    const column = ctx.table.columns.get(fields[1]?.String?.sval.toLowerCase() ?? "");
    if (!column)
      throw new TriggerFormError(
        `${qualifier}.${fields[1]?.String?.sval ?? "*"} is not a column of the trigger's table`,
      );
    const extent = sqlText.extent({ ColumnRef: node });
    if (!extent) continue;
    typedNulls.push({ ...extent, build: () => `(null::${table}).${quoteIdent(column.target)}` });
  }
  const check = applyReplacements(text, [...checking, ...replacements, ...typedNulls, ...names.replacements]);
  return { sql: translated, check };
}

interface RaiseBranch {
  /** Absent: always. */
  condition?: unknown;
  action: "error" | "ignore";
  message?: string;
}

/** `RAISE(kind, 'message')` as a call the PostgreSQL parser saw (`raise(abort, 'message')`). */
function raiseCall(node: unknown): Omit<RaiseBranch, "condition"> | undefined {
  const call = nodeKind(node);
  if (call?.[0] !== "FuncCall") return undefined;
  const names = call[1].funcname as { String?: { sval: string } }[];
  if (names.length !== 1 || names[0]!.String?.sval !== "raise") return undefined;
  const args = (call[1].args as unknown[] | undefined) ?? [];
  const kindRef = nodeKind(args[0]);
  const kind =
    kindRef?.[0] === "ColumnRef"
      ? (kindRef[1].fields as { String?: { sval: string } }[])[0]?.String?.sval
      : undefined;
  if (kind === "ignore" && args.length === 1) return { action: "ignore" };
  const message = nodeKind(args[1]);
  const text =
    message?.[0] === "A_Const" ? (message[1].sval as { sval?: string } | undefined)?.sval : undefined;
  if (text === undefined || args.length !== 2) return undefined;
  if (kind === "fail")
    throw new TriggerFormError(
      "RAISE(FAIL) keeps the rows its statement changed before it, in SQLite; not translated",
    );
  if (kind === "abort" || kind === "rollback") return { action: "error", message: text };
  return undefined;
}

/**
 * The validation forms: `SELECT RAISE(ABORT, 'msg') WHERE cond` and
 * `SELECT CASE WHEN cond THEN RAISE(ABORT, 'msg') ... END`, without FROM.
 */
function raiseBranches(select: Node): RaiseBranch[] | undefined {
  const targets = select.targetList as { ResTarget: Node }[] | undefined;
  if (select.fromClause || targets?.length !== 1) return undefined;
  const value = targets[0]!.ResTarget.val;
  const direct = raiseCall(value);
  if (direct) return [{ ...direct, ...(select.whereClause ? { condition: select.whereClause } : {}) }];
  const caseExpr = nodeKind(value);
  if (caseExpr?.[0] !== "CaseExpr" || caseExpr[1].arg || select.whereClause) return undefined;
  const otherwise = nodeKind(caseExpr[1].defresult);
  if (otherwise && !(otherwise[0] === "A_Const" && otherwise[1].isnull)) return undefined;
  const branches: RaiseBranch[] = [];
  for (const when of caseExpr[1].args as { CaseWhen: Node }[]) {
    const raise = raiseCall(when.CaseWhen.result);
    if (!raise) return undefined;
    branches.push({ ...raise, condition: when.CaseWhen.expr });
  }
  return branches;
}

function* walkColumnRefs(tree: unknown): Generator<Node> {
  const stack: unknown[] = [tree];
  while (stack.length) {
    const node = stack.pop();
    if (Array.isArray(node)) stack.push(...node);
    else if (node && typeof node === "object") {
      const kind = nodeKind(node);
      if (kind?.[0] === "ColumnRef") yield kind[1];
      stack.push(...Object.values(node));
    }
  }
}

/** A WHEN condition is checked as CASE WHEN takes it: a boolean, as PL/pgSQL's IF needs. */
const WHEN_PREFIX = "select case when (";
const WHEN_SUFFIX = ") then 1 end";
const BODY_STATEMENTS = ["UpdateStmt", "InsertStmt", "DeleteStmt"];

function dollarTag(body: string): string {
  let tag = "$pgshift$";
  for (let n = 2; body.includes(tag); n++) tag = `$pgshift${n}$`;
  return tag;
}

/**
 * Translates a CREATE TRIGGER statement, or says why not. Both results are parsed (the function by
 * the PL/pgSQL parser) before they are accepted.
 *
 *   AFTER UPDATE ON t BEGIN UPDATE t SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id; END
 *   -> a function "touch"() running `UPDATE "t" SET "updated_at" = ... WHERE "id" = new."id"`, once per row
 */
export function translateTrigger(sql: string, ctx: TriggerContext): TriggerTranslation {
  try {
    const header = parseHeader(sql);
    const returned = header.timing === "after" ? "null" : header.event === "delete" ? "old" : "new";
    const guard = `pgshift.trigger_${createHash("sha256").update(`${ctx.schema}.${ctx.name}`).digest("hex").slice(0, 16)}`;
    // RAISE(IGNORE) skips the row: possible before it is written (or instead of writing it).
    const ignoreSql =
      header.timing === "after" ? undefined : `perform set_config('${guard}', 'off', true); return null;`;
    const statements = header.body.map((s) => translatePart(s, ctx, (t) => t, BODY_STATEMENTS, ignoreSql));
    const when = header.when
      ? translatePart(header.when, ctx, (t) => `${WHEN_PREFIX}${t}${WHEN_SUFFIX}`, ["SelectStmt"])
      : undefined;
    const lines = [
      "begin",
      `  if current_setting('${guard}', true) = 'on' then return ${returned}; end if;`,
      ...(when
        ? [
            `  if not coalesce((${when.sql.slice(WHEN_PREFIX.length, -WHEN_SUFFIX.length)}), false) then return ${returned}; end if;`,
          ]
        : []),
      `  perform set_config('${guard}', 'on', true);`,
      ...statements.map((s) => `  ${s.sql};`),
      `  perform set_config('${guard}', 'off', true);`,
      `  return ${returned};`,
      "end",
    ];
    const body = lines.join("\n");
    const tag = dollarTag(body);
    const fn = quoteQualified(ctx.schema, ctx.name);
    const functionSql = `create or replace function ${fn}() returns trigger language plpgsql set search_path = ${quoteIdent(ctx.schema)} as ${tag}\n${body}\n${tag}`;
    const updateOf = header.updateOf.map((c) => {
      const column = ctx.table.columns.get(c.toLowerCase());
      if (!column) throw new TriggerFormError(`UPDATE OF ${c}: not a column of the table`);
      return quoteIdent(column.target);
    });
    const event = header.event + (updateOf.length ? ` of ${updateOf.join(", ")}` : "");
    const triggerSql = `create trigger ${quoteIdent(ctx.name)} ${header.timing} ${event} on ${quoteQualified(ctx.schema, ctx.table.target)} for each row execute function ${fn}()`;
    try {
      parsePlPgSQLSync(functionSql);
    } catch (error) {
      return { ok: false, reason: `the PL/pgSQL translation does not parse (${(error as Error).message})` };
    }
    const problem = parseProblem(triggerSql);
    if (problem) return { ok: false, reason: problem };
    const checkSql = [...statements.map((s) => s.check), ...(when ? [when.check] : [])];
    return { ok: true, sql: { functionSql, triggerSql, checkSql } };
  } catch (error) {
    if (error instanceof TriggerFormError || error instanceof IdiomError)
      return { ok: false, reason: error.message };
    if (error instanceof OverlappingEdits)
      return { ok: false, reason: `the trigger's SQL could not be rewritten safely (${error.message})` };
    throw error;
  }
}
