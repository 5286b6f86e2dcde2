import type pg from "pg";
import { quoteLiteral, quoteQualified } from "../pg/quote.ts";
import type { ImportPlan } from "../schema/plan.ts";
import type { IfExists } from "./import-sqlite.ts";

/** How the user named the run: repeated in every hint, so that a hint can be run as written. */
export interface HintContext {
  spec: string;
  schema: string;
  /** `--to URL` as given (password redacted), when the user passed it. */
  to?: string;
  tables?: readonly string[];
  exclude?: readonly string[];
  runId: string;
  plan: ImportPlan;
  ifExists: IfExists;
  /** The error code the run ended with. */
  code: string;
}

/** A shell word: quoted when it holds anything but safe characters. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function command(verb: "import" | "verify", hint: HintContext): string {
  const words = ["pgshift", verb, hint.spec];
  if (hint.to) words.push("--to", hint.to);
  words.push("--schema", hint.schema);
  if (hint.tables?.length) words.push("--tables", hint.tables.join(","));
  if (hint.exclude?.length) words.push("--exclude", hint.exclude.join(","));
  return words.map(shellWord).join(" ");
}

/**
 * What to do after a failed run: every hint repeats the user's --to, --schema and --tables; --resume
 * only while the run has something left to do (not after all rows are in and only verification
 * differed); and never a command that destroys rows the tables held before the run (after
 * --if-exists append: the rows this run added are removed by the xids its chunks recorded).
 */
export async function nextSteps(pool: pg.Pool, hint: HintContext): Promise<string[]> {
  // The server may be gone (the run failed because it was): the resume hint needs no lookup.
  const baselines = await pool
    .query("select options->'baselines' as baselines from pgshift.import_runs where run_id = $1", [
      hint.runId,
    ])
    .then(({ rows }) => (rows[0]?.baselines ?? {}) as Record<string, number>)
    .catch(() => undefined);
  // Tables that existed before the run (append into them recorded their row count, 0 included).
  const existed = hint.plan.tables.filter((t) => baselines?.[t.sourceName] !== undefined);
  const steps: string[] = [];
  if (hint.code === "verify_mismatch")
    steps.push(
      `see the differences: ${command("verify", hint)}   (every row was loaded; the report lists the rows that differ)`,
    );
  else
    steps.push(
      `resume: ${command("import", hint)} --resume ${hint.runId}   (committed chunks are kept, the rest is redone)`,
    );
  if (baselines === undefined) {
    steps.push(
      "undo: the server could not be reached to tell which rows this run wrote; the resume above works once it is back, and the report names the run",
    );
    return steps;
  }
  if (hint.ifExists === "append" && existed.length > 0) {
    const deletes = appendUndoSql(hint.plan, hint.runId, existed);
    steps.push(
      `undo this run's rows (the rows there before are kept): ${undoCommand(hint)}   (in SQL: ${deletes.join(" ")})${hint.plan.tables.length > existed.length ? ` Tables this run created (drop them): ${createdTables(hint, existed)}` : ""}`,
    );
  } else if (hint.ifExists === "append") {
    steps.push(`undo: drop the tables this run created: ${createdTables(hint, [])}`);
  } else {
    steps.push(
      `start over: ${command("import", hint)} --if-exists replace   (drops and reloads the tables this run created), or drop them: ${createdTables(hint, [])}`,
    );
  }
  if (hint.code === "verify_mismatch" && hint.ifExists === "append" && existed.length > 0)
    steps.push(
      `tables your ORM created keep their own types: undo this run, then load with ${command("import", hint)} --data-only   (converts to the existing columns' types and verifies in them)`,
    );
  return steps;
}

/** `pgshift import --undo RUN_ID`, with the user's --to: removes the run's rows by its chunks' xids. */
export function undoCommand(hint: { runId: string; to?: string }): string {
  return ["pgshift", "import", "--undo", hint.runId, ...(hint.to ? ["--to", hint.to] : [])]
    .map(shellWord)
    .join(" ");
}

/** Deletes that remove exactly the rows run `runId` inserted into `tables` (by its chunks' xids). */
export function appendUndoSql(
  plan: ImportPlan,
  runId: string,
  tables: readonly { sourceName: string; targetName: string }[],
): string[] {
  return tables.map(
    (t) =>
      `delete from ${quoteQualified(plan.targetSchema, t.targetName)} where xmin::text::bigint in (select xid from pgshift.import_chunks where run_id = ${quoteLiteral(runId)} and source_table = ${quoteLiteral(t.sourceName)});`,
  );
}

function createdTables(hint: HintContext, except: readonly { sourceName: string }[]): string {
  return hint.plan.tables
    .filter((t) => !except.some((e) => e.sourceName === t.sourceName))
    .map((t) => quoteQualified(hint.plan.targetSchema, t.targetName))
    .join(", ");
}
