import type { ImportResult, StepResult } from "../../load/import-sqlite.ts";
import {
  countSchemaObjects,
  type SchemaObjectCount,
  type SchemaObjectKind,
  type SchemaObjectProblem,
  type SchemaObjects,
} from "../../load/object-counts.ts";
import { renderTable } from "../output.ts";

const PLURAL: Record<SchemaObjectKind, string> = {
  "primary-key": "primary keys",
  index: "indexes",
  "foreign-key": "foreign keys",
  check: "checks",
  view: "views",
  trigger: "triggers",
  "virtual-table": "virtual tables",
};

const SINGULAR: Record<SchemaObjectKind, string> = {
  "primary-key": "primary key",
  index: "index",
  "foreign-key": "foreign key",
  check: "check",
  view: "view",
  trigger: "trigger",
  "virtual-table": "virtual table",
};

/** Plan notes that are objects counted in the schema line (the rest are decisions, listed as notes). */
const COUNTED_NOTE_KINDS = new Set(["index", "check", "foreign-key", "view", "trigger"]);

function seconds(value: number): string {
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(1)} s`;
}

function quoted(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `indexes 29/29, foreign keys 13/13, checks 7/7, views 8/17, triggers 0/3 (reported)` */
export function schemaObjectsLine(counts: readonly SchemaObjectCount[]): string {
  return counts
    .map((c) => `${PLURAL[c.kind]} ${c.created}/${c.source}${c.reportedOnly ? " (reported)" : ""}`)
    .join(", ");
}

/** `view "Invoices"`, `index "by_day" on "orders"`, `check on "orders"` (a CHECK without a name). */
export function problemName(problem: SchemaObjectProblem): string {
  const kind = SINGULAR[problem.kind];
  if (problem.table === undefined) return `${kind} ${quoted(problem.object)}`;
  if (problem.object === problem.table) return `${kind} on ${quoted(problem.table)}`;
  return `${kind} ${quoted(problem.object)} on ${quoted(problem.table)}`;
}

/** `view "Invoices": text + text (SQLite's + on text)` */
export function problemLine(problem: SchemaObjectProblem): string {
  return `${problemName(problem)}: ${problem.reason}`;
}

/**
 * The objects not created (or created NOT VALID), grouped by kind: a header per kind with the count,
 * then one line per object with its name and the reason. The SQLite SQL of each is in the report;
 * `verbose` prints it under its line.
 */
export function renderSchemaProblems(objects: SchemaObjects, verbose: boolean): string[] {
  const lines: string[] = [];
  for (const count of objects.counts) {
    const mine = objects.problems.filter((p) => p.kind === count.kind);
    if (mine.length === 0) continue;
    const missing = count.source - count.created;
    const notValid = mine.filter((p) => p.partial).length;
    const parts: string[] = [];
    if (missing > 0) parts.push(`${missing} of ${count.source} not created`);
    if (notValid > 0) parts.push(`${notValid} left NOT VALID`);
    // One reason for all (SQLite triggers, say): said once, in the header.
    const shared =
      mine.length > 1 && mine.every((p) => p.reason === mine[0]!.reason && !p.partial)
        ? mine[0]!.reason
        : undefined;
    lines.push(`${PLURAL[count.kind]}: ${parts.join(", ")}${shared ? `: ${shared}` : ""}`);
    for (const problem of mine) {
      lines.push(`  ${shared ? problemName(problem) : problemLine(problem)}`);
      if (verbose && problem.sql)
        for (const sqlLine of problem.sql.trim().split("\n")) lines.push(`      ${sqlLine.trimEnd()}`);
    }
  }
  if (!verbose && objects.problems.some((p) => p.sql))
    lines.push("(the SQLite SQL of each is in the report; --verbose prints it here)");
  return lines;
}

/** Warnings the steps already explain (a key, index, constraint or view PostgreSQL refused). */
function fromFailedStep(warning: string, steps: readonly StepResult[]): boolean {
  return steps.some(
    (s) =>
      s.status === "failed" &&
      /^(?:key|index|add|validate|view):/.test(s.step) &&
      s.detail !== undefined &&
      warning.includes(s.detail.split("\n")[0]!),
  );
}

/** The human summary of a SQLite import: the row table, the schema objects, the outcome, what needs attention. */
export function renderSqliteResult(
  result: ImportResult,
  reportPath: string | undefined,
  options: { verbose?: boolean } = {},
): string {
  const verbose = Boolean(options.verbose);
  if (result.dryRun) {
    const lines = [`-- pgshift import ${result.source.spec}: plan only (--dry-run), nothing was changed`];
    lines.push(...result.sql.map((s) => `${s};`));
    if (result.notes.length) {
      lines.push("", "-- decisions and things not translated:");
      for (const note of result.notes)
        lines.push(
          `--   ${note.object}: ${note.message}${note.sql ? ` [${note.sql.replace(/\s+/g, " ")}]` : ""}`,
        );
    }
    return lines.join("\n");
  }
  const rows = result.tables.map((t) => [
    t.target === t.source ? t.target : `${t.source} -> ${t.target}`,
    t.rowsRead,
    t.rowsLoaded,
    t.rowsQuarantined,
    Object.values(t.conversions).reduce((a, b) => a + b, 0),
    t.status === "complete" ? seconds(t.seconds) : `${t.status} (${t.chunks.done}/${t.chunks.total} chunks)`,
  ]);
  const lines = [renderTable(["table", "rows read", "loaded", "quarantined", "conversions", "time"], rows)];
  const objects = result.objects ?? countSchemaObjects(result.plan, result.steps);
  lines.push("");
  if (objects.counts.length) lines.push(`schema: ${schemaObjectsLine(objects.counts)}`);
  if (result.resumed && result.runId)
    lines.push(
      `resumed run ${result.runId}: the chunks committed before were kept, the rest loaded now (the figures count both)`,
    );
  lines.push(
    `${result.totals.rowsLoaded} rows loaded into schema ${result.schema} at ${result.target.url} in ${seconds(result.seconds)}` +
      (result.phases.data ? ` (data ${seconds(result.phases.data)})` : ""),
  );
  if (result.totals.rowsQuarantined)
    lines.push(
      `${result.totals.rowsQuarantined} row(s) quarantined: select * from pgshift.quarantine where run_id = '${result.runId}'`,
    );
  if (result.encryption) {
    const e = result.encryption;
    lines.push(
      `encrypted${e.keyId ? ` under key "${e.keyId}"` : ""}: ${e.columns
        .map(
          (c) =>
            `${c.table}.${c.column} (${c.originalType} -> jsonb envelope${c.blindIndex ? ", blind index" : ""})`,
        )
        .join(
          ", ",
        )}${e.recordMacs.length ? `; record MACs in record_mac of ${e.recordMacs.join(", ")}` : ""}`,
    );
  }
  if (result.verification) {
    lines.push(
      result.verification.identical
        ? `verified: identical (counts and per-row checksums${result.encryption ? ", encrypted values decrypted and compared" : ""})`
        : "verification: DIFFERENCES found (see the report)",
    );
  } else if (result.ok) lines.push("verified: row counts read back from PostgreSQL match the rows read");
  const problems = renderSchemaProblems(objects, verbose);
  if (problems.length) lines.push("", ...problems);
  const notes = result.notes.filter(
    (n) =>
      n.kind !== "type" &&
      // Warning-level notes are listed once, under warnings.
      !("severity" in n && n.severity === "warning") &&
      !COUNTED_NOTE_KINDS.has(n.kind) &&
      !(n.kind === "skipped" && /^(?:trigger|virtual table) /.test(n.message)),
  );
  if (notes.length) {
    lines.push("", "notes:");
    for (const note of notes) lines.push(`  - ${note.object}: ${note.message}`);
  }
  if (result.dropped.length) {
    lines.push("", "dropped by --if-exists replace --cascade (not recreated):");
    for (const object of result.dropped) lines.push(`  x ${object}`);
  }
  const warnings = result.warnings.filter((w) => !fromFailedStep(w, result.steps));
  if (warnings.length) {
    lines.push("", "warnings:");
    for (const warning of warnings) lines.push(`  ! ${warning}`);
  }
  if (result.error) {
    lines.push("", `import failed: ${result.error.message}`);
    const complete = result.tables.filter((t) => t.status === "complete").map((t) => t.target);
    const incomplete = result.tables.filter((t) => t.status !== "complete").map((t) => t.target);
    lines.push(
      `  complete:   ${complete.join(", ") || "-"}`,
      `  incomplete: ${incomplete.join(", ") || "-"}`,
    );
    for (const next of result.nextSteps) lines.push(`  ${next}`);
  }
  if (reportPath) lines.push(`report: ${reportPath}`);
  return lines.join("\n");
}
