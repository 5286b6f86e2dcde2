import type { DataOnlyResult } from "../../load/data-only/import-data-only.ts";
import type { UndoResult } from "../../load/data-only/undo-run.ts";
import { renderTable } from "../output.ts";

/** The mapping, the compatibility report, and (after a load) the rows, sequences and verification. */
export function renderDataOnlyResult(result: DataOnlyResult, reportPath: string | undefined): string {
  const lines: string[] = [];
  const mappingRows = result.mapping.tables.flatMap((t) => [
    [`${t.source}`, t.target, t.how],
    ...t.columns
      .filter((c) => c.how !== "exact")
      .map((c) => [`  ${t.source}.${c.source}`, `${t.target}.${c.target}`, c.how]),
  ]);
  lines.push(
    `-- pgshift import ${result.source.spec} --data-only into schema ${result.schema}${result.dryRun ? ": check only (--dry-run), nothing was changed" : ""}`,
    renderTable(["source", "target", "matched by"], mappingRows),
    `load order: ${result.order.join(", ")}${result.cycles.length ? ` (loaded together, constraints deferred: ${result.cycles.map((c) => c.join(" <-> ")).join("; ")})` : ""}`,
  );
  const errors = result.problems.filter((p) => p.severity === "error");
  const warnings = result.problems.filter((p) => p.severity === "warning");
  lines.push(
    "",
    errors.length ? `compatibility: ${errors.length} problem(s) stop the load` : "compatibility: ok",
  );
  for (const p of [...errors, ...warnings])
    lines.push(
      `  ${p.severity === "error" ? "error" : "note "} ${p.kind}: ${p.message}${p.rows ? ` (${p.rows} rows, e.g. ${p.examples?.join(", ")})` : ""}`,
    );
  if (result.dryRun) return lines.join("\n");
  lines.push(
    "",
    renderTable(
      ["table", "loaded", "rows before", "conversions"],
      result.tables.map((t) => [
        t.source === t.target ? t.target : `${t.source} -> ${t.target}`,
        t.rowsLoaded,
        t.rowsBefore,
        Object.values(t.conversions).reduce((a, b) => a + b, 0),
      ]),
    ),
  );
  for (const s of result.sequences)
    if (s.setTo) lines.push(`sequence ${s.sequence} set to ${s.setTo} (${s.table}.${s.column})`);
  if (result.verification)
    lines.push(
      result.verification.identical
        ? "verification: identical (checksums in the target's types)"
        : "verification: DIFFERENT (see the report for keys and columns)",
    );
  if (result.error) lines.push(`error: ${result.error.message}`);
  if (result.runId) lines.push(`run ${result.runId}; undo with: pgshift import --undo ${result.runId}`);
  for (const step of result.nextSteps) lines.push(`next: ${step}`);
  if (reportPath) lines.push(`report: ${reportPath}`);
  return lines.join("\n");
}

export function renderUndoResult(result: UndoResult): string {
  const lines = [
    renderTable(
      ["table", "removed", "loaded by the run", "how"],
      result.tables.map((t) => [t.table, t.rowsRemoved, t.rowsLoaded, t.how]),
    ),
    `run ${result.runId} undone in ${result.seconds}s: ${result.tables.reduce((n, t) => n + t.rowsRemoved, 0)} rows removed, ${result.sequencesRestored} sequence(s) restored; no table was dropped`,
  ];
  for (const w of result.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}
