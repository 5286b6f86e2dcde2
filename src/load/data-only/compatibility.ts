import type Database from "better-sqlite3";
import type pg from "pg";
import { quoteIdent, quoteQualified } from "../../pg/quote.ts";
import type { TablePlan } from "../../schema/plan.ts";
import { quoteSqlite, rowidOf } from "../../sources/sqlite/sqlite-rows.ts";
import { createRowEncoder, previewValue } from "../row-encoder.ts";
import type { TargetColumn, TargetTable } from "./target-catalog.ts";
import { timestampPrecision } from "./target-conversion.ts";
import type { Mapping } from "./table-mapping.ts";

/** One thing that would stop (error) or deserves a look (warning) before data goes into the ORM's tables. */
export interface CompatibilityProblem {
  severity: "error" | "warning";
  kind:
    | "missing-table"
    | "extra-table"
    | "missing-column"
    | "extra-column"
    | "not-null"
    | "too-long"
    | "would-round"
    | "out-of-range"
    | "enum-label"
    | "zoned-timestamp"
    | "bad-value"
    | "fk-cycle"
    | "key-conflict";
  table: string;
  column?: string;
  message: string;
  /** Rows affected. */
  rows?: number;
  /** Up to 3 source keys (primary key or rowid) of rows affected. */
  examples?: string[];
}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  int2: [-32768n, 32767n],
  int4: [-2147483648n, 2147483647n],
  int8: [-9223372036854775808n, 9223372036854775807n],
};

/** Digits of a number's exact decimal text before and after the point. */
function decimalDigits(text: string): { whole: number; fraction: number } | undefined {
  const match = /^[-+]?(\d*)(?:\.(\d*))?(?:e([-+]?\d+))?$/i.exec(text.trim());
  if (!match) return undefined;
  let whole = (match[1] ?? "").replace(/^0+/, "");
  let fraction = (match[2] ?? "").replace(/0+$/, "");
  const exponent = Number(match[3] ?? 0);
  if (exponent > 0) {
    const moved = fraction.slice(0, exponent).padEnd(exponent, "0");
    whole = (whole + moved).replace(/^0+/, "");
    fraction = fraction.slice(exponent);
  } else if (exponent < 0) {
    fraction = whole.slice(Math.max(0, whole.length + exponent)).padStart(-exponent, "0") + fraction;
    whole = whole.slice(0, Math.max(0, whole.length + exponent));
  }
  return { whole: whole.length, fraction: fraction.length };
}

/** What a value does not fit in `target` beyond what the encoder already refuses; undefined when it fits. */
function valueProblem(
  target: TargetColumn,
  value: unknown,
): { kind: CompatibilityProblem["kind"]; reason: string } | undefined {
  const text =
    typeof value === "string"
      ? value
      : typeof value === "number" || typeof value === "bigint"
        ? String(value)
        : undefined;
  if (text === undefined) return undefined;
  if (target.maxLength !== undefined && [...text].length > target.maxLength)
    return { kind: "too-long", reason: `longer than ${target.type} allows` };
  if (target.enumLabels && !target.enumLabels.includes(text))
    return {
      kind: "enum-label",
      reason: `not a label of enum ${target.type} (${target.enumLabels.join(", ")})`,
    };
  if (target.typname === "uuid" && !/^\{?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}\}?$/i.test(text))
    return { kind: "bad-value", reason: "not a UUID" };
  const range = INT_RANGE[target.typname];
  if (range) {
    if (typeof value === "number" && !Number.isInteger(value))
      return { kind: "would-round", reason: `not an integer, ${target.type} would round it` };
    if (/^[-+]?\d+$/.test(text) && (BigInt(text) < range[0] || BigInt(text) > range[1]))
      return { kind: "out-of-range", reason: `outside the range of ${target.type}` };
  }
  if (target.typname === "numeric" && target.precision !== undefined) {
    const digits = decimalDigits(text);
    if (digits && digits.fraction > target.scale!)
      return {
        kind: "would-round",
        reason: `has ${digits.fraction} decimals, ${target.type} would round it`,
      };
    if (digits && digits.whole > target.precision - target.scale!)
      return { kind: "out-of-range", reason: `too many digits for ${target.type}` };
  }
  if ((target.typname === "timestamp" || target.typname === "timestamptz") && typeof value === "string") {
    const fraction = /\d:\d\d:\d\d\.(\d+)/.exec(value)?.[1];
    if (fraction && fraction.replace(/0+$/, "").length > timestampPrecision(target.type))
      return { kind: "would-round", reason: `more fractional seconds than ${target.type} keeps` };
  }
  return undefined;
}

/**
 * Checks, before anything is written, that every source table and column has a place in the target
 * and that every value fits the target column's actual type: each problem with table, column, row
 * count and example keys. Reads every source row once (the same encoders the load uses).
 */
export function checkCompatibility(
  db: Database.Database,
  mapping: Mapping,
  plans: readonly TablePlan[],
  targets: readonly TargetTable[],
): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  for (const name of mapping.missingTables)
    problems.push({
      severity: "error",
      kind: "missing-table",
      table: name,
      message: `source table ${name} has no table in the target (add it to the ORM schema, map it with --map, or leave it out with --exclude)`,
    });
  for (const name of mapping.extraTables)
    problems.push({
      severity: "warning",
      kind: "extra-table",
      table: name,
      message: `target table ${name} receives no source table`,
    });
  for (const table of mapping.tables) {
    const target = targets.find((t) => t.name === table.target)!;
    for (const column of table.unmatchedSource)
      problems.push({
        severity: "error",
        kind: "missing-column",
        table: table.source,
        column,
        message: `source column ${table.source}.${column} has no column in ${table.target} (its values would be lost; map it with --map)`,
      });
    for (const name of table.unmatchedTarget) {
      const column = target.columns.find((c) => c.name === name)!;
      const filled = column.hasDefault || column.identity || !column.notNull;
      problems.push({
        severity: filled ? "warning" : "error",
        kind: filled ? "extra-column" : "not-null",
        table: table.target,
        column: name,
        message: filled
          ? `target column ${table.target}.${name} receives no source column (${column.hasDefault || column.identity ? "its default fills it" : "left NULL"})`
          : `target column ${table.target}.${name} is NOT NULL without a default and no source column fills it`,
      });
    }
  }
  for (const plan of plans)
    problems.push(
      ...checkValues(
        db,
        plan,
        targets.find((t) => t.name === plan.targetName)!,
      ),
    );
  return problems;
}

function checkValues(db: Database.Database, plan: TablePlan, target: TargetTable): CompatibilityProblem[] {
  const columns = plan.columns.map((c) => target.columns.find((t) => t.name === c.targetName)!);
  const rowid = plan.withoutRowid
    ? undefined
    : rowidOf(
        plan.sourceName,
        plan.columns.map((c) => c.sourceName),
      );
  const keyIndexes = plan.primaryKey.map((k) => plan.columns.findIndex((c) => c.targetName === k));
  const select = `select ${rowid ?? "null"}, ${plan.columns.map((c) => quoteSqlite(c.sourceName)).join(", ")} from ${quoteSqlite(plan.sourceName)}`;
  const found = new Map<string, CompatibilityProblem>();
  const encoder = createRowEncoder(plan.columns, () => null);
  const note = (column: number, kind: CompatibilityProblem["kind"], reason: string, row: unknown[]) => {
    const name = plan.columns[column]!.targetName;
    const id = `${name}\0${kind}\0${reason}`;
    let problem = found.get(id);
    if (!problem) {
      problem = {
        severity: "error",
        kind,
        table: plan.targetName,
        column: name,
        message: `${plan.targetName}.${name} (${columns[column]!.type}): ${reason}`,
        rows: 0,
        examples: [],
      };
      found.set(id, problem);
    }
    problem.rows!++;
    if (problem.examples!.length < 3)
      problem.examples!.push(
        keyIndexes.length && !keyIndexes.includes(-1)
          ? `(${keyIndexes.map((i) => previewValue(row[i + 1])).join(", ")})`
          : `rowid ${String(row[0])}`,
      );
  };
  const statement = db.prepare(select).raw(true).safeIntegers(plan.bigIntegers);
  for (const row of statement.iterate() as Iterable<unknown[]>) {
    for (let i = 0; i < columns.length; i++) {
      const value = row[i + 1];
      const target = columns[i]!;
      if (value === null) {
        if (target.notNull) note(i, "not-null", "NULL in a NOT NULL column", row);
        continue;
      }
      encoder.problem = undefined;
      if (encoder.encodeValue(i, value) === undefined) {
        const reason = (encoder.problem as { reason: string } | undefined)?.reason ?? "cannot be converted";
        note(i, reason.includes("zone") ? "zoned-timestamp" : "bad-value", reason, row);
        continue;
      }
      const problem = valueProblem(target, value);
      if (problem) note(i, problem.kind, problem.reason, row);
    }
  }
  return [...found.values()];
}

const TEXT_KEY_TYPES = new Set(["int2", "int4", "int8", "text", "varchar", "bpchar", "uuid"]);

/**
 * Rows the target table holds already whose primary key the source has too (Django's `migrate` fills
 * django_content_type and auth_permission, say): the load would fail half-way on a unique violation.
 * Checked for tables with rows and a key of integer or text columns.
 */
export async function checkExistingKeys(
  client: pg.ClientBase,
  db: Database.Database,
  plans: readonly TablePlan[],
  targets: readonly TargetTable[],
): Promise<CompatibilityProblem[]> {
  const problems: CompatibilityProblem[] = [];
  for (const plan of plans) {
    const target = targets.find((t) => t.name === plan.targetName)!;
    const key = plan.primaryKey;
    const keyColumns = key.map((k) => plan.columns.find((c) => c.targetName === k));
    if (
      key.length === 0 ||
      keyColumns.some((c) => c === undefined) ||
      key.some((k) => !TEXT_KEY_TYPES.has(target.columns.find((c) => c.name === k)?.typname ?? ""))
    )
      continue;
    const table = quoteQualified(plan.targetSchema, plan.targetName);
    const { rows: any } = await client.query(`select 1 from ${table} limit 1`);
    if (any.length === 0) continue;
    const { rows } = await client.query({
      text: `select ${key.map((k) => `${quoteIdent(k)}::text`).join(", ")} from ${table}`,
      rowMode: "array",
    });
    const existing = new Set(rows.map((r: unknown[]) => JSON.stringify(r)));
    const select = `select ${keyColumns.map((c) => quoteSqlite(c!.sourceName)).join(", ")} from ${quoteSqlite(plan.sourceName)}`;
    const statement = db.prepare(select).raw(true).safeIntegers(true);
    let count = 0;
    const examples: string[] = [];
    for (const row of statement.iterate() as Iterable<unknown[]>) {
      const shown = row.map((v) => (v === null ? null : String(v)));
      if (!existing.has(JSON.stringify(shown))) continue;
      count++;
      if (examples.length < 3) examples.push(`(${shown.join(", ")})`);
    }
    if (count)
      problems.push({
        severity: "error",
        kind: "key-conflict",
        table: plan.targetName,
        message: `${plan.targetName} already holds rows with the keys of ${count} source rows (${key.join(", ")}); empty it first (rows the ORM's migrations inserted, e.g. Django's content types) or leave it out with --exclude ${plan.sourceName}`,
        rows: count,
        examples,
      });
  }
  return problems;
}
