import type { Node } from "libpg-query";
import type { MigrationFile } from "./migration-file.ts";
import { nodeKind, type SqlStatement } from "./sql-statements.ts";

/** The hazards `pgshift migrate lint` knows; each name is what an ignore comment refers to. */
export const LINT_RULES = {
  "index-not-concurrent":
    "CREATE INDEX without CONCURRENTLY blocks writes to an existing table while the index builds",
  "volatile-default":
    "ADD COLUMN with a volatile default (or a serial/stored generated column) rewrites the whole table under an ACCESS EXCLUSIVE lock",
  "set-not-null":
    "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock unless a validated CHECK (col IS NOT NULL) exists",
  "constraint-not-valid":
    "ADD FOREIGN KEY / CHECK without NOT VALID validates every row while holding a lock that blocks writes",
  "column-type-change":
    "ALTER COLUMN TYPE usually rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
  "add-unique-constraint":
    "ADD UNIQUE / PRIMARY KEY builds an index while blocking writes; build it CONCURRENTLY and add the constraint USING INDEX",
  rename: "renaming a table or column breaks the application code still using the old name",
  drop: "dropping a table or column breaks the application code still using it and cannot be undone",
  "lint-ignore-reason": "a pgshift-lint-ignore comment needs a rule name and a written reason",
} as const;
export type LintRule = keyof typeof LINT_RULES;

export interface LintFinding {
  rule: LintRule;
  file: string;
  version: string;
  line: number;
  message: string;
  /** Set when an ignore comment covers the finding; ignored findings do not fail lint. */
  ignored?: { reason: string };
}

export interface LintResult {
  files: number;
  statements: number;
  findings: LintFinding[];
  /** Findings not covered by an ignore comment: what makes lint fail. */
  errors: number;
  ignored: number;
}

const IGNORE_PREFIX = "pgshift-lint-ignore:";

/**
 * Functions known not to be volatile, allowed as ADD COLUMN defaults (PostgreSQL 11+ stores such a
 * default without rewriting the table). Anything else is treated as possibly volatile.
 */
const NON_VOLATILE_FUNCTIONS = new Set([
  "now",
  "transaction_timestamp",
  "statement_timestamp",
  "current_setting",
  "lower",
  "upper",
  "length",
  "coalesce",
  "to_jsonb",
  "jsonb_build_object",
  "jsonb_build_array",
  "json_build_object",
  "array_fill",
  "make_interval",
  "to_timestamp",
  "concat",
  "format",
]);
const SERIAL_TYPES = new Set(["serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"]);

interface TableState {
  /** Created in the set of migrations being linted (so no one can be using it yet). */
  created: Set<string>;
  /** `table` -> names of CHECK constraints of the form `col IS NOT NULL`, with their column. */
  notNullChecks: Map<string, Map<string, string>>;
  /** `table.column` with a validated `IS NOT NULL` check. */
  validatedNotNull: Set<string>;
}

/**
 * Lints the up sections of `migrations`, taken as one set to be applied in order: a table created
 * earlier in the set counts as new (nobody uses it yet), every other table as existing and busy.
 * Unqualified names are taken to be in `public`.
 */
export function lintMigrations(migrations: readonly MigrationFile[]): LintResult {
  const state: TableState = {
    created: new Set(),
    notNullChecks: new Map(),
    validatedNotNull: new Set(),
  };
  const findings: LintFinding[] = [];
  let statements = 0;
  for (const migration of migrations) {
    for (const statement of migration.up.statements) {
      statements++;
      const raw: Omit<LintFinding, "file" | "version" | "line">[] = [];
      checkStatement(statement.node, state, (rule, message) => raw.push({ rule, message }));
      const { ignores, problems } = ignoresOf(statement);
      for (const problem of problems) raw.push({ rule: "lint-ignore-reason", message: problem });
      for (const finding of raw) {
        const reason = finding.rule === "lint-ignore-reason" ? undefined : ignores.get(finding.rule);
        findings.push({
          ...finding,
          file: migration.file,
          version: migration.version,
          line: statement.line,
          ...(reason ? { ignored: { reason } } : {}),
        });
      }
    }
  }
  const ignored = findings.filter((f) => f.ignored).length;
  return {
    files: migrations.length,
    statements,
    findings,
    errors: findings.length - ignored,
    ignored,
  };
}

/** `-- pgshift-lint-ignore: <rule> <reason>` comments right before the statement. */
function ignoresOf(statement: SqlStatement): {
  ignores: Map<string, string>;
  problems: string[];
} {
  const ignores = new Map<string, string>();
  const problems: string[] = [];
  for (const comment of statement.leadingComments) {
    if (!comment.toLowerCase().startsWith(IGNORE_PREFIX)) continue;
    const rest = comment.slice(IGNORE_PREFIX.length).trim();
    const [rule = "", ...words] = rest.split(/\s+/);
    const reason = words.join(" ").trim();
    if (!(rule in LINT_RULES)) {
      problems.push(
        `"-- ${IGNORE_PREFIX} ${rule}": unknown rule (known: ${Object.keys(LINT_RULES).join(", ")})`,
      );
    } else if (reason.length < 3) {
      problems.push(`"-- ${IGNORE_PREFIX} ${rule}" needs a written reason after the rule name`);
    } else {
      ignores.set(rule, reason);
    }
  }
  return { ignores, problems };
}

type Report = (rule: LintRule, message: string) => void;

interface RangeVarLike {
  schemaname?: string;
  relname?: string;
}

function tableKey(relation: RangeVarLike | undefined): string {
  return `${relation?.schemaname ?? "public"}.${relation?.relname ?? ""}`;
}

function checkStatement(node: Node, state: TableState, report: Report): void {
  const [kind, body] = nodeKind(node);
  switch (kind) {
    case "CreateStmt":
    case "CreateTableAsStmt": {
      const relation = (kind === "CreateStmt" ? body.relation : (body.into as { rel?: unknown })?.rel) as
        RangeVarLike | undefined;
      state.created.add(tableKey(relation));
      return;
    }
    case "IndexStmt": {
      const table = tableKey(body.relation as RangeVarLike);
      if (!body.concurrent && !state.created.has(table))
        report(
          "index-not-concurrent",
          `CREATE INDEX on existing table ${table} without CONCURRENTLY blocks writes while it builds; use CREATE INDEX CONCURRENTLY in a "-- migrate:no-transaction" migration`,
        );
      return;
    }
    case "AlterTableStmt":
      checkAlterTable(body, state, report);
      return;
    case "RenameStmt": {
      const table = tableKey(body.relation as RangeVarLike);
      if (state.created.has(table)) return;
      if (body.renameType === "OBJECT_TABLE")
        report(
          "rename",
          `renaming table ${table} to ${body.newname} breaks code that still uses the old name`,
        );
      else if (body.renameType === "OBJECT_COLUMN")
        report(
          "rename",
          `renaming column ${table}.${body.subname} to ${body.newname} breaks code that still uses the old name`,
        );
      return;
    }
    case "DropStmt": {
      if (body.removeType !== "OBJECT_TABLE") return;
      for (const object of (body.objects ?? []) as {
        List?: { items?: { String?: { sval?: string } }[] };
      }[]) {
        const names = (object.List?.items ?? []).map((i) => i.String?.sval ?? "");
        const table =
          names.length > 1
            ? tableKey({ schemaname: names[0]!, relname: names[1]! })
            : tableKey({ relname: names[0]! });
        if (!state.created.has(table))
          report("drop", `DROP TABLE ${table} removes data and breaks code that still uses it`);
      }
      return;
    }
    default:
      return;
  }
}

interface AlterCmd {
  subtype?: string;
  name?: string;
  def?: Node;
}

function checkAlterTable(body: Record<string, unknown>, state: TableState, report: Report): void {
  if (body.objtype !== "OBJECT_TABLE") return;
  const table = tableKey(body.relation as RangeVarLike);
  const isNew = state.created.has(table);
  for (const entry of (body.cmds ?? []) as { AlterTableCmd?: AlterCmd }[]) {
    const cmd = entry.AlterTableCmd;
    if (!cmd) continue;
    switch (cmd.subtype) {
      case "AT_AddColumn": {
        if (isNew) break;
        const [, column] = nodeKind(cmd.def as Node);
        checkNewColumn(table, column, report);
        break;
      }
      case "AT_SetNotNull": {
        if (isNew || state.validatedNotNull.has(`${table}.${cmd.name}`)) break;
        report(
          "set-not-null",
          `SET NOT NULL on ${table}.${cmd.name} scans the table under an ACCESS EXCLUSIVE lock; first ADD CONSTRAINT ... CHECK (${cmd.name} IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT, then SET NOT NULL`,
        );
        break;
      }
      case "AT_AddConstraint": {
        const [, constraint] = nodeKind(cmd.def as Node);
        checkConstraint(table, isNew, constraint, state, report);
        break;
      }
      case "AT_ValidateConstraint": {
        const column = state.notNullChecks.get(table)?.get(cmd.name ?? "");
        if (column) state.validatedNotNull.add(`${table}.${column}`);
        break;
      }
      case "AT_AlterColumnType":
        if (!isNew)
          report(
            "column-type-change",
            `ALTER COLUMN ${cmd.name} TYPE on ${table} may rewrite the table and its indexes under an ACCESS EXCLUSIVE lock; add a new column, backfill it in batches, then switch`,
          );
        break;
      case "AT_DropColumn":
        if (!isNew)
          report(
            "drop",
            `DROP COLUMN ${table}.${cmd.name} breaks code that still reads it; stop using it first, then drop it in a later release`,
          );
        break;
      default:
        break;
    }
  }
}

function checkNewColumn(table: string, column: Record<string, unknown>, report: Report): void {
  const typeNames = ((column.typeName as { names?: { String?: { sval?: string } }[] })?.names ?? []).map(
    (n) => n.String?.sval ?? "",
  );
  const typeName = typeNames[typeNames.length - 1] ?? "";
  if (SERIAL_TYPES.has(typeName)) {
    report(
      "volatile-default",
      `ADD COLUMN ${column.colname} ${typeName} on ${table} fills every row from a sequence, rewriting the table`,
    );
    return;
  }
  for (const c of (column.constraints ?? []) as Node[]) {
    const [, constraint] = nodeKind(c);
    if (constraint.contype === "CONSTR_DEFAULT") {
      const volatile = volatileCall(constraint.raw_expr);
      if (volatile)
        report(
          "volatile-default",
          `ADD COLUMN ${column.colname} on ${table} with default ${volatile}() (volatile or unknown) rewrites the table; add the column without a default, backfill in batches, then SET DEFAULT`,
        );
    }
    if (constraint.contype === "CONSTR_GENERATED" && constraint.generated_when === "a")
      report(
        "volatile-default",
        `ADD COLUMN ${column.colname} GENERATED ALWAYS AS (...) STORED on ${table} rewrites the table`,
      );
    if (constraint.contype === "CONSTR_IDENTITY")
      report("volatile-default", `ADD COLUMN ${column.colname} ... IDENTITY on ${table} rewrites the table`);
  }
}

/** The first function call in an expression that is not known to be non-volatile. */
function volatileCall(expression: unknown): string | undefined {
  let found: string | undefined;
  const visit = (value: unknown): void => {
    if (found || value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    const record = value as Record<string, unknown>;
    const call = record.FuncCall as { funcname?: { String?: { sval?: string } }[] } | undefined;
    if (call) {
      const names = (call.funcname ?? []).map((n) => n.String?.sval ?? "");
      const name = names[names.length - 1] ?? "";
      if (!NON_VOLATILE_FUNCTIONS.has(name.toLowerCase())) {
        found = names.join(".");
        return;
      }
    }
    for (const child of Object.values(record)) visit(child);
  };
  visit(expression);
  return found;
}

function checkConstraint(
  table: string,
  isNew: boolean,
  constraint: Record<string, unknown>,
  state: TableState,
  report: Report,
): void {
  const name = String(constraint.conname ?? "");
  if (constraint.contype === "CONSTR_CHECK") {
    const test = (constraint.raw_expr as { NullTest?: Record<string, unknown> } | undefined)?.NullTest;
    const fields = (test?.arg as { ColumnRef?: { fields?: { String?: { sval?: string } }[] } })?.ColumnRef
      ?.fields;
    if (test?.nulltesttype === "IS_NOT_NULL" && fields?.length === 1 && name) {
      const column = fields[0]!.String?.sval ?? "";
      const checks = state.notNullChecks.get(table) ?? new Map<string, string>();
      checks.set(name, column);
      state.notNullChecks.set(table, checks);
      if (!constraint.skip_validation) state.validatedNotNull.add(`${table}.${column}`);
    }
  }
  if (isNew) return;
  if (
    (constraint.contype === "CONSTR_FOREIGN" || constraint.contype === "CONSTR_CHECK") &&
    !constraint.skip_validation
  ) {
    const what = constraint.contype === "CONSTR_FOREIGN" ? "FOREIGN KEY" : "CHECK";
    report(
      "constraint-not-valid",
      `ADD ${what}${name ? ` ${name}` : ""} on ${table} without NOT VALID checks every row while blocking writes; add it NOT VALID, then VALIDATE CONSTRAINT in a separate migration`,
    );
  }
  if (
    (constraint.contype === "CONSTR_UNIQUE" || constraint.contype === "CONSTR_PRIMARY") &&
    !constraint.indexname
  ) {
    report(
      "add-unique-constraint",
      `ADD ${constraint.contype === "CONSTR_UNIQUE" ? "UNIQUE" : "PRIMARY KEY"}${name ? ` ${name}` : ""} on ${table} builds its index while blocking writes; CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX`,
    );
  }
}
