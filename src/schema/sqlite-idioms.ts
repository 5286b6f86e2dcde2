import { quoteLiteral } from "../pg/quote.ts";
import { DateTranslationError, type TimeArgument, translateDateCall } from "./sqlite-dates.ts";
import { type Extent, type Node, nodeKind, type Replacement, type SqlText, walk } from "./sql-rewrite.ts";
import type { Affinity, Conversion } from "./type-mapping.ts";

/**
 * SQLite idioms in a parsed SELECT, rewritten to PostgreSQL with the same results: functions
 * (group_concat, ifnull, substr, instr, length, the date functions, scalar max/min, avg, total,
 * round, iif), `||` and arithmetic on values of other types, comparisons of text columns with
 * numbers, `LIMIT -1` and SQLite type names in CAST. What has no faithful translation is an error
 * naming the construct, never a silent change.
 */

/** A column of an imported table, as a view sees it. */
export interface ViewColumn {
  /** Target column name. */
  target: string;
  pgType: string;
  conversion: Conversion;
  /** SQLite's affinity of the declared type: it decides how SQLite compares the column with a number. */
  affinity: Affinity;
}

export type Category =
  | "text"
  | "literal"
  | "number"
  | "boolean"
  | "bytea"
  | "date"
  | "timestamp"
  | "timestamptz"
  | "json"
  | "null"
  | "unknown";

export class IdiomError extends Error {
  readonly code = "idiom_not_translated";
}

export interface IdiomContext {
  text: SqlText;
  /** The imported column a column reference denotes, when it is known. */
  columnOf(ref: Node): ViewColumn | undefined;
  /** The collation SQLite's NOCASE becomes (absent: the server has no ICU). */
  nocaseCollation?: string;
}

export function categoryOfType(pgType: string): Category {
  const t = pgType.toLowerCase();
  if (/char|text/.test(t)) return "text";
  if (/int|numeric|double|real|decimal|float/.test(t)) return "number";
  if (t === "boolean") return "boolean";
  if (t === "bytea") return "bytea";
  if (t === "date") return "date";
  if (t === "timestamptz" || t.includes("with time zone")) return "timestamptz";
  if (t.startsWith("timestamp")) return "timestamp";
  if (t.startsWith("json")) return "json";
  return "unknown";
}

function funcName(call: Node): string {
  const names = call.funcname as { String?: { sval: string } }[];
  return names[names.length - 1]?.String?.sval.toLowerCase() ?? "";
}

const NUMBER_FUNCTIONS = new Set([
  "count",
  "sum",
  "avg",
  "total",
  "length",
  "instr",
  "strpos",
  "abs",
  "round",
  "julianday",
  "unixepoch",
]);
const TEXT_FUNCTIONS = new Set([
  "group_concat",
  "string_agg",
  "substr",
  "substring",
  "lower",
  "upper",
  "trim",
  "ltrim",
  "rtrim",
  "replace",
  "date",
  "time",
  "datetime",
  "strftime",
]);

/** Functions whose SQLite meaning PostgreSQL has no function for (or one with another meaning). */
const UNTRANSLATABLE = new Set([
  "typeof",
  "random",
  "randomblob",
  "hex",
  "unhex",
  "quote",
  "printf",
  "format",
  "zeroblob",
  "last_insert_rowid",
  "changes",
  "total_changes",
  "unicode",
  "char",
  "soundex",
  "likely",
  "unlikely",
  "likelihood",
  "sqlite_version",
  "glob",
  "like",
  "load_extension",
  "octet_length",
  "json",
  "json_extract",
  "json_object",
  "json_array",
  "json_group_array",
  "json_group_object",
  "json_each",
  "json_tree",
]);

export function categoryOf(node: unknown, ctx: IdiomContext): Category {
  const kind = nodeKind(node);
  if (!kind) return "unknown";
  const [type, inner] = kind;
  switch (type) {
    case "A_Const":
      if (inner.isnull) return "null";
      if (inner.sval) return "literal";
      if (inner.ival || inner.fval) return "number";
      if (inner.boolval) return "boolean";
      return "number";
    case "ColumnRef": {
      const column = ctx.columnOf(inner);
      return column ? categoryOfType(column.pgType) : "unknown";
    }
    case "TypeCast": {
      const names = (inner.typeName as { names: { String?: { sval: string } }[] }).names;
      return categoryOfType(names[names.length - 1]?.String?.sval ?? "");
    }
    case "FuncCall": {
      const name = funcName(inner);
      if (TEXT_FUNCTIONS.has(name)) return "text";
      if (NUMBER_FUNCTIONS.has(name)) return "number";
      if (["coalesce", "ifnull", "max", "min", "nullif"].includes(name)) {
        for (const arg of (inner.args as unknown[]) ?? []) {
          const c = categoryOf(arg, ctx);
          if (c !== "null" && c !== "unknown" && c !== "literal") return c;
        }
      }
      return "unknown";
    }
    case "A_Expr": {
      const op = operatorOf(inner);
      if (op === "||") return "text";
      if (["+", "-", "*", "/", "%"].includes(op ?? "")) return "number";
      return "unknown";
    }
    case "BoolExpr":
    case "NullTest":
      return "boolean";
    case "SQLValueFunction":
      return "text";
    default:
      return "unknown";
  }
}

function operatorOf(expr: Node): string | undefined {
  if (expr.kind !== "AEXPR_OP" && expr.kind !== "AEXPR_IN") return undefined;
  const names = expr.name as { String?: { sval: string } }[];
  return names?.[names.length - 1]?.String?.sval;
}

export function intValue(node: unknown): number | undefined {
  const kind = nodeKind(node);
  if (kind?.[0] !== "A_Const") return undefined;
  const c = kind[1];
  if (c.ival !== undefined) return (c.ival as { ival?: number }).ival ?? 0;
  return undefined;
}

/** A numeric literal as SQLite renders it when it converts the number to text (5 -> '5', 1.50 -> '1.5'). */
function numberLiteralText(node: unknown): string | undefined {
  const kind = nodeKind(node);
  if (kind?.[0] !== "A_Const") return undefined;
  const c = kind[1];
  if (c.ival !== undefined) return String((c.ival as { ival?: number }).ival ?? 0);
  if (c.fval !== undefined) {
    const text = (c.fval as { fval: string }).fval;
    if (/^-?\d+$/.test(text)) return text;
    const n = Number(text);
    if (!Number.isFinite(n)) return undefined;
    return Number.isInteger(n) ? `${n}.0` : String(n);
  }
  return undefined;
}

function stringValue(node: unknown): string | undefined {
  const kind = nodeKind(node);
  if (kind?.[0] !== "A_Const") return undefined;
  return (kind[1].sval as { sval?: string } | undefined)?.sval ?? (kind[1].sval ? "" : undefined);
}

const CLOCK_FORMATS: Record<string, string> = {
  SVFOP_CURRENT_TIMESTAMP: "YYYY-MM-DD HH24:MI:SS",
  SVFOP_CURRENT_DATE: "YYYY-MM-DD",
  SVFOP_CURRENT_TIME: "HH24:MI:SS",
};

const ARITHMETIC = new Set(["+", "-", "*", "/", "%"]);
const COMPARISONS = new Set(["=", "<>", "!=", "<", "<=", ">", ">="]);
const ORDERING = new Set(["<", "<=", ">", ">="]);

/** Finds every idiom in the tree and returns the replacements that translate them. */
export function idiomReplacements(tree: unknown, ctx: IdiomContext): Replacement[] {
  const replacements: Replacement[] = [];
  const { text } = ctx;
  const extentOf = (node: unknown): Extent => {
    const extent = text.extent(node);
    if (!extent) throw new IdiomError("an expression whose extent is unknown");
    return extent;
  };
  /** The rendered text of a node as text, the way SQLite turns a value into text. */
  const asText = (node: unknown, render: (r: Extent) => string): string => {
    const rendered = render(extentOf(node));
    const category = categoryOf(node, ctx);
    if (category === "text" || category === "literal" || category === "null") return rendered;
    if (category === "boolean") return `(${rendered})::int::text`;
    return `(${rendered})::text`;
  };

  for (const node of walk(tree)) {
    const kind = nodeKind(node);
    if (!kind) continue;
    const [type, inner] = kind;
    if (type === "FuncCall") functionIdiom(inner);
    else if (type === "A_Expr") operatorIdiom(inner);
    else if (type === "TypeCast") castIdiom(inner);
    else if (type === "SelectStmt") limitIdiom(inner);
    else if (type === "SQLValueFunction") clockIdiom(inner);
    else if (type === "CoalesceExpr") coalesceIdiom(inner);
    else if (type === "CollateClause") collateIdiom(inner);
  }
  return replacements;

  function functionIdiom(call: Node): void {
    const name = funcName(call);
    if ((call.funcname as unknown[]).length > 1) return;
    if (UNTRANSLATABLE.has(name) || name.startsWith("json_"))
      throw new IdiomError(`function ${name}() has no PostgreSQL equivalent with the same meaning`);
    const located = text.call(call.location as number);
    if (!located) throw new IdiomError(`function ${name}() could not be located`);
    const args = (call.args as unknown[] | undefined) ?? [];
    const { extent, close } = located;
    const closeAt = text.tokens[close]!.start;
    const tail = (render: (r: Extent) => string) =>
      text.text.slice(closeAt, text.tokens[close]!.end) +
      render({ start: text.tokens[close]!.end, end: extent.end });
    const replace = (build: Replacement["build"]) => replacements.push({ ...extent, build });
    const rendered = (render: (r: Extent) => string) => args.map((a) => render(extentOf(a)));

    switch (name) {
      case "group_concat":
      case "string_agg": {
        if (args.length < 1 || args.length > 2)
          throw new IdiomError(`${name}() with ${args.length} arguments`);
        const order = call.agg_order as unknown[] | undefined;
        replace((render) => {
          const value = asText(args[0], render);
          const separator = args[1] ? asText(args[1], render) : "','";
          let orderBy = "";
          if (order?.length) {
            const orderIndex = text.tokens.findIndex(
              (t, i) => i < close && t.start >= extentOf(args[args.length - 1]).end && text.is(i, "order"),
            );
            orderBy = ` ${render({ start: text.tokens[orderIndex]!.start, end: closeAt })}`.replace(
              /\s+$/,
              "",
            );
          }
          return `string_agg(${call.agg_distinct ? "distinct " : ""}${value}, ${separator}${orderBy}${tail(render)}`;
        });
        return;
      }
      case "ifnull":
      case "coalesce": {
        if (args.length < 2) throw new IdiomError(`${name}() with ${args.length} argument(s)`);
        const categories = args.map((a) => categoryOf(a, ctx));
        const mixed =
          categories.some((c) => c === "text" || c === "literal") &&
          categories.some((c) => !["text", "literal", "null", "unknown"].includes(c));
        replace(
          (render) =>
            `coalesce(${mixed ? args.map((a) => asText(a, render)).join(", ") : rendered(render).join(", ")}${tail(render)}`,
        );
        return;
      }
      case "iif": {
        if (args.length !== 3) throw new IdiomError(`iif() with ${args.length} arguments`);
        replace((render) => {
          const [c, a, b] = rendered(render);
          return `case when ${c} then ${a} else ${b} end`;
        });
        return;
      }
      case "substr":
      case "substring": {
        if (args.length < 2 || args.length > 3)
          throw new IdiomError(`${name}() with ${args.length} arguments`);
        const start = intValue(args[1]);
        if (categoryOf(args[0], ctx) === "bytea") return;
        if (start !== undefined && start < 0) {
          // A negative start counts from the end in SQLite: the last n characters are right(x, n).
          if (args.length === 3)
            throw new IdiomError(
              `${name}() from position ${start} with a length (counted from the end in SQLite)`,
            );
          replace((render) => `right(${asText(args[0], render)}, ${-start})`);
          return;
        }
        replace((render) => {
          const rest = args.slice(1).map((a) => render(extentOf(a)));
          return `substr(${[asText(args[0], render), ...rest].join(", ")}${tail(render)}`;
        });
        return;
      }
      case "instr":
        if (args.length !== 2) throw new IdiomError(`instr() with ${args.length} arguments`);
        replace((render) => `strpos(${asText(args[0], render)}, ${asText(args[1], render)}${tail(render)}`);
        return;
      case "length":
      case "lower":
      case "upper":
      case "trim":
      case "ltrim":
      case "rtrim":
      case "replace": {
        if (args.length === 0 || (name === "length" && categoryOf(args[0], ctx) === "bytea")) return;
        if (call.funcformat === "COERCE_SQL_SYNTAX") return;
        if (args.every((a) => ["text", "literal", "null"].includes(categoryOf(a, ctx)))) return;
        replace((render) => `${name}(${args.map((a) => asText(a, render)).join(", ")}${tail(render)}`);
        return;
      }
      case "max":
      case "min":
        // With two or more arguments SQLite's max/min are scalar: greatest/least (which skip NULLs,
        // where SQLite's return NULL).
        if (args.length < 2) return;
        replace(
          (render) =>
            `(case when ${rendered(render)
              .map((a) => `(${a}) is null`)
              .join(
                " or ",
              )} then null else ${name === "max" ? "greatest" : "least"}(${rendered(render).join(", ")}) end)`,
        );
        return;
      case "avg":
        // SQLite's avg is a floating-point value; PostgreSQL's avg of integers is numeric.
        replace(
          (render) =>
            `(avg(${call.agg_distinct ? "distinct " : ""}${rendered(render).join(", ")}${tail(render)})::double precision`,
        );
        return;
      case "total":
        if (args.length !== 1) throw new IdiomError(`total() with ${args.length} arguments`);
        if (call.over) throw new IdiomError("total() as a window function");
        replace((render) => `coalesce(sum(${rendered(render)[0]}${tail(render)}, 0)::double precision`);
        return;
      case "round": {
        replace((render) => {
          const [value, digits] = rendered(render);
          return `(round((${value})::numeric${digits !== undefined ? `, ${digits}` : ""}))::double precision`;
        });
        return;
      }
      case "date":
      case "time":
      case "datetime":
      case "strftime":
      case "julianday":
      case "unixepoch":
        dateIdiom(name, args, extent);
        return;
      default:
        return;
    }
  }

  function dateIdiom(
    name: "date" | "time" | "datetime" | "strftime" | "julianday" | "unixepoch",
    args: unknown[],
    extent: Extent,
  ): void {
    let format: string | undefined;
    let rest = args;
    if (name === "strftime") {
      format = stringValue(args[0]);
      if (format === undefined) throw new IdiomError("strftime() with a format that is not a string literal");
      rest = args.slice(1);
    }
    const [value, ...modifierNodes] = rest;
    const modifiers = modifierNodes.map((m) => {
      const s = stringValue(m);
      if (s === undefined) throw new IdiomError(`${name}() with a modifier that is not a string literal`);
      return s;
    });
    replacements.push({
      ...extent,
      build: (render) => {
        let argument: TimeArgument;
        const literal = value === undefined ? "now" : stringValue(value);
        if (literal !== undefined && literal.toLowerCase() === "now") argument = { kind: "now" };
        else if (literal !== undefined) argument = { kind: "literal", sql: quoteLiteral(literal) };
        else {
          const category = categoryOf(value, ctx);
          const sql = render(extentOf(value));
          const column = nodeKind(value)?.[0] === "ColumnRef" ? ctx.columnOf(nodeKind(value)![1]) : undefined;
          if (column && (column.conversion === "epoch-s" || column.conversion === "epoch-ms"))
            argument = { kind: "timestamptz", sql };
          else if (
            category === "text" ||
            category === "number" ||
            category === "timestamp" ||
            category === "timestamptz" ||
            category === "date"
          )
            argument = { kind: category, sql };
          else argument = { kind: "unknown", sql };
        }
        try {
          return translateDateCall(name, argument, modifiers, format);
        } catch (error) {
          if (error instanceof DateTranslationError) throw new IdiomError(error.message);
          throw error;
        }
      },
    });
    // Errors in modifiers and formats must surface now, not at render time.
    try {
      translateDateCall(
        name,
        { kind: "text", sql: "x" },
        modifiers.filter((m) => m.trim().toLowerCase() !== "unixepoch"),
        format,
      );
    } catch (error) {
      if (error instanceof DateTranslationError) throw new IdiomError(error.message);
      throw error;
    }
  }

  function parenthesized(node: unknown): boolean {
    const extent = extentOf(node);
    const first = text.tokens.findIndex((t) => t.start === extent.start);
    const last = text.tokens.findIndex((t) => t.end === extent.end);
    return text.is(first - 1, "(") && text.is(last + 1, ")") && text.matching(first - 1) === last + 1;
  }

  function operatorIdiom(expr: Node): void {
    const between = expr.kind === "AEXPR_BETWEEN" || expr.kind === "AEXPR_NOT_BETWEEN";
    const op = between ? ">=" : operatorOf(expr);
    if (op === undefined) return;
    if (op === "||") {
      const sides = [expr.lexpr, expr.rexpr];
      for (const side of sides) {
        const child = nodeKind(side);
        const childOp = child?.[0] === "A_Expr" ? operatorOf(child[1]) : undefined;
        if (childOp && ARITHMETIC.has(childOp) && child![1].lexpr !== undefined && !parenthesized(side))
          throw new IdiomError(
            `|| next to ${childOp} without parentheses: SQLite binds || tighter than arithmetic, PostgreSQL looser, so the expression would mean something else (add parentheses in SQLite)`,
          );
      }
      for (const side of sides) {
        const category = categoryOf(side, ctx);
        if (category === "text" || category === "literal" || category === "null") continue;
        const extent = extentOf(side);
        replacements.push({ ...extent, build: (render) => asText(side, (r) => render(r)) });
      }
      return;
    }
    if (["+", "-", "*", "/", "%"].includes(op) && expr.kind === "AEXPR_OP") {
      for (const side of [expr.lexpr, expr.rexpr]) {
        if (side === undefined) continue;
        const category = categoryOf(side, ctx);
        if (category !== "text" && category !== "literal") continue;
        const extent = extentOf(side);
        replacements.push({ ...extent, build: (render) => `(${render(extent)})::numeric` });
      }
      return;
    }
    if (!COMPARISONS.has(op)) return;
    const pairs: [unknown, unknown[]][] =
      expr.kind === "AEXPR_IN" || between
        ? [[expr.lexpr, (expr.rexpr as { List?: { items: unknown[] } })?.List?.items ?? []]]
        : [
            [expr.lexpr, [expr.rexpr]],
            [expr.rexpr, [expr.lexpr]],
          ];
    for (const [columnSide, others] of pairs) {
      const ref = nodeKind(columnSide);
      if (ref?.[0] !== "ColumnRef") continue;
      const column = ctx.columnOf(ref[1]);
      if (!column) continue;
      const category = categoryOfType(column.pgType);
      for (const other of others) {
        if (column.conversion === "boolean") {
          const v = intValue(other);
          if (v === 0 || v === 1) {
            const extent = extentOf(other);
            replacements.push({ ...extent, build: () => (v ? "true" : "false") });
          }
          continue;
        }
        const number = numberLiteralText(other);
        if (category === "text" && number !== undefined) {
          if (column.affinity !== "text")
            throw new IdiomError(
              `comparison of column ${column.target} (values of several storage classes, kept as text) with the number ${number}: SQLite compares by storage class`,
            );
          // SQLite applies the column's TEXT affinity to the number and compares text, byte by byte.
          const extent = extentOf(other);
          replacements.push({
            ...extent,
            build: () => (ORDERING.has(op) ? `(${quoteLiteral(number)} collate "C")` : quoteLiteral(number)),
          });
          continue;
        }
      }
      if (category === "date" || category === "timestamp") dateComparison(columnSide, category, others);
    }
  }

  /**
   * SQLite compares a date column's stored text, byte by byte. A literal in the column's own full
   * form (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`) orders the same as the time it names; anything else
   * (`'1997'`, `'19970101'`, a date() result against a timestamp) is compared as text, as SQLite does.
   */
  function dateComparison(columnSide: unknown, category: "date" | "timestamp", others: unknown[]): void {
    const canonical =
      category === "date" ? /^\d{4}-\d{2}-\d{2}$/ : /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/;
    const asTextNeeded = others.some((other) => {
      const c = categoryOf(other, ctx);
      if (c === "literal") return !canonical.test(stringValue(other) ?? "");
      return c === "text";
    });
    if (!asTextNeeded) return;
    const extent = extentOf(columnSide);
    replacements.push({ ...extent, build: (render) => `((${render(extent)})::text collate "C")` });
  }

  function castIdiom(cast: Node): void {
    const names = (cast.typeName as { names: { String?: { sval: string } }[] }).names;
    const typeName = names[names.length - 1]?.String?.sval.toLowerCase() ?? "";
    const location = cast.location as number;
    const at = text.tokenAt(location);
    if (at === undefined || !text.is(at, "cast")) return;
    const close = text.matching(at + 1);
    const extent = text.span(at, close);
    const arg = cast.arg;
    const argCategory = categoryOf(arg, ctx);
    const target = sqliteCastType(typeName);
    if (target === undefined) return;
    replacements.push({
      ...extent,
      build: (render) => {
        const value = render(extentOf(arg));
        if (target === "bigint")
          // SQLite truncates toward zero (and reads a leading number from text); PostgreSQL would round.
          return argCategory === "number" || argCategory === "text" || argCategory === "literal"
            ? `trunc((${value})::numeric)::bigint`
            : `(${value})::bigint`;
        return `(${value})::${target}`;
      },
    });
  }

  function collateIdiom(collate: Node): void {
    const names = collate.collname as { String?: { sval: string } }[];
    const name = names[names.length - 1]?.String?.sval.toLowerCase();
    const at = text.tokenAt(collate.location as number);
    if (names.length !== 1 || at === undefined || !text.is(at, "collate")) return;
    let collation: string;
    if (name === "binary") collation = '"C"';
    else if (name === "nocase" && ctx.nocaseCollation) collation = ctx.nocaseCollation;
    else if (name === "nocase") throw new IdiomError("COLLATE NOCASE needs a server with ICU collations");
    else throw new IdiomError(`COLLATE ${name} has no PostgreSQL equivalent`);
    replacements.push({ ...text.span(at + 1, at + 1), build: () => collation });
  }

  function coalesceIdiom(coalesce: Node): void {
    // PostgreSQL needs one type for all arguments; SQLite takes any: text and numbers -> text.
    const args = (coalesce.args as unknown[]) ?? [];
    const categories = args.map((a) => categoryOf(a, ctx));
    const mixed =
      categories.some((c) => c === "text" || c === "literal") &&
      categories.some((c) => !["text", "literal", "null", "unknown"].includes(c));
    if (!mixed) return;
    const extent = extentOf({ CoalesceExpr: coalesce });
    replacements.push({
      ...extent,
      build: (render) => `coalesce(${args.map((a) => asText(a, render)).join(", ")})`,
    });
  }

  function clockIdiom(clock: Node): void {
    // SQLite's CURRENT_TIMESTAMP / CURRENT_DATE / CURRENT_TIME are UTC text.
    const format = CLOCK_FORMATS[clock.op as string];
    if (!format) return;
    const extent = extentOf({ SQLValueFunction: clock });
    replacements.push({
      ...extent,
      build: () => `to_char(current_timestamp at time zone 'UTC', '${format}')`,
    });
  }

  function limitIdiom(select: Node): void {
    const limit = select.limitCount;
    const value = intValue(limit);
    if (value === undefined || value >= 0) return;
    // A negative LIMIT is no limit in SQLite.
    const extent = extentOf(limit);
    replacements.push({ ...extent, build: () => "all" });
  }
}

/**
 * SQLite type names in CAST, by affinity (https://sqlite.org/lang_expr.html#castexpr), as the
 * PostgreSQL parser names them (INTEGER -> int4, REAL -> float4, CHAR -> bpchar).
 */
function sqliteCastType(name: string): string | undefined {
  if (name.includes("int") && !name.startsWith("interval")) return "bigint";
  if (name === "float4" || name === "real" || name.includes("doub") || name.includes("floa"))
    return "double precision";
  if (name === "bpchar" || name === "varchar" || name.includes("char") || name.includes("clob"))
    return "text";
  if (name === "blob") return "bytea";
  return undefined;
}
