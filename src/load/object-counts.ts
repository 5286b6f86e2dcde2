import type { ImportPlan } from "../schema/plan.ts";

/** The kinds of schema object an import counts, in the order the summary names them. */
export type SchemaObjectKind =
  "primary-key" | "index" | "foreign-key" | "check" | "view" | "trigger" | "virtual-table";

export interface SchemaObjectCount {
  kind: SchemaObjectKind;
  /** How many the source has (of the tables imported). */
  source: number;
  /** How many exist in the target after the run (created now, or found from an earlier run). */
  created: number;
  /** pgshift does not create this kind: each one is reported, none attempted (SQLite virtual tables; triggers in plans stored before they were translated). */
  reportedOnly?: boolean;
}

/** One object of the source that is not in the target as it was in the source, with why. */
export interface SchemaObjectProblem {
  kind: SchemaObjectKind;
  /** The object's name (for CHECKs and foreign keys without a name of their own: the table's). */
  object: string;
  /** The table it belongs to, for keys, indexes and constraints. */
  table?: string;
  /** One line: why it was not created (the translation's reason, or PostgreSQL's error). */
  reason: string;
  /** The SQLite SQL of the object, when known (the report has it; the terminal with --verbose). */
  sql?: string;
  /** Created, but not as the source has it (a constraint left NOT VALID). */
  partial?: boolean;
}

export interface SchemaObjects {
  counts: SchemaObjectCount[];
  problems: SchemaObjectProblem[];
}

/** The subset of a step result this needs (see StepResult in import-sqlite.ts). */
interface StepOutcome {
  step: string;
  status: string;
  detail?: string;
}

const ORDER: readonly SchemaObjectKind[] = [
  "primary-key",
  "index",
  "foreign-key",
  "check",
  "view",
  "trigger",
  "virtual-table",
];

function firstLine(text: string): string {
  return text.split("\n")[0]!.trim();
}

/**
 * Counts, per kind of schema object, what the source had against what the target has after the run,
 * from the plan (what was planned, and the notes on what could not be) and the steps (what was
 * created). The plan's notes carry the objects that were never attempted; failed steps the ones
 * PostgreSQL refused.
 *
 *   countSchemaObjects(plan, result.steps).counts
 *   // [{ kind: "index", source: 29, created: 29 }, { kind: "view", source: 17, created: 8 }, ...]
 */
export function countSchemaObjects(plan: ImportPlan, steps: readonly StepOutcome[]): SchemaObjects {
  const status = new Map<string, StepOutcome>();
  for (const s of steps) status.set(s.step, s);
  const present = (step: string) => {
    const s = status.get(step)?.status;
    return s === "done" || s === "skipped";
  };
  const counts = new Map<SchemaObjectKind, SchemaObjectCount>();
  const count = (kind: SchemaObjectKind, created: boolean) => {
    const entry = counts.get(kind) ?? { kind, source: 0, created: 0 };
    entry.source++;
    if (created) entry.created++;
    counts.set(kind, entry);
  };
  const problems: SchemaObjectProblem[] = [];
  const failed = (step: string) => {
    const s = status.get(step);
    return s?.status === "failed" ? firstLine(s.detail ?? "failed") : undefined;
  };

  for (const table of plan.tables) {
    for (const key of table.keys) {
      const kind = key.kind === "primary-key" ? "primary-key" : "index";
      const step = `key:${table.targetName}:${key.targetName}`;
      count(kind, present(step));
      const reason = failed(step);
      if (reason) problems.push({ kind, object: key.targetName, table: table.targetName, reason });
    }
    for (const index of table.indexes) {
      const step = `index:${index.targetName}`;
      count("index", present(step));
      const reason = failed(step);
      if (reason) problems.push({ kind: "index", object: index.sourceName, table: table.targetName, reason });
    }
    for (const constraint of [...table.checks, ...table.foreignKeys]) {
      const kind = constraint.kind;
      const add = `add:${table.targetName}:${constraint.targetName}`;
      count(kind, present(add));
      const reason = failed(add);
      if (reason)
        problems.push({
          kind,
          object: constraint.targetName,
          table: table.targetName,
          reason,
          sql: constraint.sourceSql,
        });
      const notValid = failed(`validate:${table.targetName}:${constraint.targetName}`);
      if (notValid)
        problems.push({
          kind,
          object: constraint.targetName,
          table: table.targetName,
          reason: `left NOT VALID (enforced for new rows only): ${notValid}`,
          sql: constraint.sourceSql,
          partial: true,
        });
    }
  }
  for (const view of plan.views) {
    if (!view.sql) {
      // Not translated: the plan's note says why (counted below with the other notes' objects).
      count("view", false);
      problems.push({
        kind: "view",
        object: view.sourceName,
        reason: firstLine(view.problem ?? "not translated"),
        sql: view.sourceSql,
      });
      continue;
    }
    const step = `view:${view.targetName}`;
    count("view", present(step));
    const reason = failed(step);
    if (reason) problems.push({ kind: "view", object: view.sourceName, reason, sql: view.sourceSql });
  }
  // Triggers are translated where they can be (plans stored before that have none: their notes count).
  for (const trigger of plan.triggers ?? []) {
    if (!trigger.sql) {
      count("trigger", false);
      problems.push({
        kind: "trigger",
        object: trigger.sourceName,
        reason: firstLine(trigger.problem ?? "not translated"),
        sql: trigger.sourceSql,
      });
      continue;
    }
    const step = `trigger:${trigger.targetName}`;
    count("trigger", present(step));
    const reason = failed(step);
    if (reason)
      problems.push({ kind: "trigger", object: trigger.sourceName, reason, sql: trigger.sourceSql });
  }
  for (const note of plan.notes) {
    const kind = noteKind(note.kind, note.message);
    if (!kind) continue;
    count(kind, false);
    const reportedOnly = kind === "trigger" || kind === "virtual-table";
    if (reportedOnly) counts.get(kind)!.reportedOnly = true;
    problems.push({
      kind,
      object: note.object,
      ...(kind === "check" || kind === "foreign-key" ? { table: note.object } : {}),
      reason: firstLine(stripPrefix(note.message)),
      ...(note.sql ? { sql: note.sql } : {}),
    });
  }
  return {
    counts: ORDER.flatMap((kind) => (counts.has(kind) ? [counts.get(kind)!] : [])),
    problems: problems.sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind)),
  };
}

/** The kind of object a plan note says was not created; undefined for decisions (types, names, defaults). */
function noteKind(kind: string, message: string): SchemaObjectKind | undefined {
  if (kind === "index") return "index";
  if (kind === "check") return "check";
  if (kind === "foreign-key") return "foreign-key";
  // Views carry their reason on the view plan, counted above.
  // Plans that translate triggers carry them on plan.triggers, counted above; older plans skipped them.
  if (kind === "skipped" && message.startsWith("trigger ")) return "trigger";
  if (kind === "skipped" && message.startsWith("virtual table ")) return "virtual-table";
  return undefined;
}

/** "index not created: X" -> "X": the summary names the kind once per group. */
function stripPrefix(message: string): string {
  return message.replace(
    /^(?:partial index not created|index not created|CHECK not translated|trigger not imported|virtual table not imported):\s*/,
    "",
  );
}
