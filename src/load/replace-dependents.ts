import type pg from "pg";
import { ExitCode, PgshiftError } from "../errors.ts";
import { withClient } from "../pg/pool.ts";
import { quoteQualified } from "../pg/quote.ts";
import type { ConstraintPlan, ImportPlan, ViewPlan } from "../schema/plan.ts";
import type { StepResult } from "./import-sqlite.ts";
import { constraintExists, relationExists, type RunContext, step } from "./run-context.ts";

/**
 * What `--if-exists replace` would drop besides the tables and views it replaces: objects elsewhere
 * that depend on them (pg_depend, pg_rewrite, pg_constraint), which `drop ... cascade` removes too.
 * pgshift's own (views and foreign keys an earlier import into this schema planned) are recreated
 * after the load; the user's are never dropped without --cascade.
 */
export interface Dependent {
  kind: "view" | "foreign-key" | "other";
  /** "schema.view", "schema.table constraint name", or PostgreSQL's description of the object. */
  object: string;
  /** The replaced table or view it depends on. */
  dependsOn: string;
  /** Created by an earlier pgshift import into this schema (and so recreated), or the user's. */
  createdBy: "pgshift" | "user";
  /** For pgshift's own: how to create it again. */
  view?: ViewPlan;
  foreignKey?: { table: string; constraint: ConstraintPlan };
}

/** What the schema stage dropped with the replaced tables, stored on the run for the later stages and --resume. */
export interface ReplacedDependents {
  dependents: readonly Dependent[];
}

interface PgshiftObjects {
  views: Map<string, ViewPlan>;
  foreignKeys: Map<string, { table: string; constraint: ConstraintPlan }>;
  /** "table\0name" of every key, index, constraint and trigger pgshift planned on its tables. */
  onTables: Set<string>;
}

/** Views and foreign keys that imports into `schema` planned (the latest run's plan wins). */
async function pgshiftObjects(client: pg.ClientBase, schema: string): Promise<PgshiftObjects> {
  const { rows } = await client.query(
    "select plan from pgshift.import_runs where target_schema = $1 order by started_at",
    [schema],
  );
  const found: PgshiftObjects = { views: new Map(), foreignKeys: new Map(), onTables: new Set() };
  for (const { plan } of rows as { plan: ImportPlan }[]) {
    for (const view of plan.views ?? []) if (view.sql) found.views.set(view.targetName, view);
    for (const table of plan.tables ?? []) {
      for (const constraint of table.foreignKeys ?? [])
        found.foreignKeys.set(`${table.targetName}\0${constraint.targetName}`, {
          table: table.targetName,
          constraint,
        });
      const named = [
        ...(table.keys ?? []),
        ...(table.indexes ?? []),
        ...(table.checks ?? []),
        ...(table.foreignKeys ?? []),
      ];
      for (const object of named)
        if (object.targetName) found.onTables.add(`${table.targetName}\0${object.targetName}`);
    }
    // Translated SQLite triggers (plans stored before triggers were translated have none).
    for (const trigger of plan.triggers ?? [])
      if (trigger.sql) found.onTables.add(`${trigger.table}\0${trigger.targetName}`);
  }
  return found;
}

/** The objects outside `replaced` (names of tables and views in `schema`) that depend on them. */
export async function findDependents(
  client: pg.ClientBase,
  schema: string,
  replaced: readonly string[],
): Promise<Dependent[]> {
  const targets = `select c.oid, c.reltype, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p', 'v', 'm')`;
  const { rows: views } = await client.query(
    `with t as (${targets})
     select distinct vn.nspname as schema, v.relname as name, t.relname as on
       from pg_depend d
       join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
       join pg_class v on v.oid = r.ev_class
       join pg_namespace vn on vn.oid = v.relnamespace
       join t on d.refclassid = 'pg_class'::regclass and d.refobjid = t.oid
      where v.oid not in (select oid from t)
      order by 1, 2, 3`,
    [schema, replaced],
  );
  const { rows: keys } = await client.query(
    `with t as (${targets})
     select k.conname as name, cn.nspname as schema, c.relname as table, t.relname as on
       from pg_constraint k
       join t on t.oid = k.confrelid
       join pg_class c on c.oid = k.conrelid
       join pg_namespace cn on cn.oid = c.relnamespace
      where k.contype = 'f' and k.conrelid not in (select oid from t)
      order by 2, 3, 1`,
    [schema, replaced],
  );
  // Anything else a cascade would reach: functions with SQL bodies, columns of the tables' row types...
  const { rows: others } = await client.query(
    `with t as (${targets})
     select distinct pg_describe_object(d.classid, d.objid, d.objsubid) as object, t.relname as on
       from pg_depend d
       join t on (d.refclassid = 'pg_class'::regclass and d.refobjid = t.oid)
              or (d.refclassid = 'pg_type'::regclass and d.refobjid = t.reltype)
      where d.deptype = 'n' and d.classid not in ('pg_rewrite'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass)
        and not (d.classid = 'pg_class'::regclass and d.objid in (select oid from t))
        and not (d.classid = 'pg_type'::regclass and d.objid in (select reltype from t))
      order by 1, 2`,
    [schema, replaced],
  );
  // The user's own indexes, constraints, triggers and policies on the replaced tables go with them too.
  const { rows: onTables } = await client.query(
    `with t as (${targets})
     select 'index' as kind, i.relname as name, t.relname as on from pg_index x
       join t on t.oid = x.indrelid join pg_class i on i.oid = x.indexrelid
      where not exists (select 1 from pg_constraint k where k.conindid = x.indexrelid and k.conrelid = x.indrelid)
     union all
     select 'constraint', k.conname, t.relname from pg_constraint k join t on t.oid = k.conrelid
      where k.contype in ('p', 'u', 'c', 'f', 'x')
     union all
     select 'trigger', g.tgname, t.relname from pg_trigger g join t on t.oid = g.tgrelid where not g.tgisinternal
     union all
     select 'policy', p.polname, t.relname from pg_policy p join t on t.oid = p.polrelid
     order by 3, 1, 2`,
    [schema, replaced],
  );
  const known =
    views.length + keys.length + onTables.length > 0 &&
    (await client.query("select to_regclass('pgshift.import_runs') is not null as ok")).rows[0].ok
      ? await pgshiftObjects(client, schema)
      : { views: new Map(), foreignKeys: new Map(), onTables: new Set<string>() };
  const dependents: Dependent[] = [];
  for (const v of views) {
    const view = v.schema === schema ? known.views.get(v.name) : undefined;
    dependents.push({
      kind: "view",
      object: `${v.schema}.${v.name}`,
      dependsOn: `${schema}.${v.on}`,
      createdBy: view ? "pgshift" : "user",
      ...(view ? { view } : {}),
    });
  }
  for (const k of keys) {
    const foreignKey = k.schema === schema ? known.foreignKeys.get(`${k.table}\0${k.name}`) : undefined;
    dependents.push({
      kind: "foreign-key",
      object: `${k.schema}.${k.table} constraint ${k.name}`,
      dependsOn: `${schema}.${k.on}`,
      createdBy: foreignKey ? "pgshift" : "user",
      ...(foreignKey ? { foreignKey } : {}),
    });
  }
  for (const o of onTables) {
    // NOT NULL constraints (PostgreSQL 18 lists them) are the columns' own: not selected above.
    if (known.onTables.has(`${o.on}\0${o.name}`)) continue;
    dependents.push({
      kind: "other",
      object: `${o.kind} ${o.name} on ${schema}.${o.on}`,
      dependsOn: `${schema}.${o.on}`,
      createdBy: "user",
    });
  }
  for (const o of others)
    dependents.push({ kind: "other", object: o.object, dependsOn: `${schema}.${o.on}`, createdBy: "user" });
  return dependents;
}

/** Refuses a replace that would drop the user's objects, unless --cascade was given. */
export function assertReplaceable(dependents: readonly Dependent[], cascade: boolean): void {
  const users = dependents.filter((d) => d.createdBy === "user");
  if (users.length === 0 || cascade) return;
  throw new PgshiftError(
    "replace_dependents",
    `--if-exists replace would drop objects pgshift did not create, which depend on the tables it replaces: ${users.map(described).join("; ")}. Nothing was changed. Drop or change them yourself, or pass --cascade to drop them (they are listed afterwards; pgshift's own views and foreign keys are recreated)`,
    {
      exitCode: ExitCode.usage,
      details: { dependents: users.map(({ kind, object, dependsOn }) => ({ kind, object, dependsOn })) },
    },
  );
}

/** Stores what the schema stage is about to drop on the run, in the same transaction as the drop. */
export async function recordReplaced(
  client: pg.ClientBase,
  runId: string,
  dependents: readonly Dependent[],
): Promise<void> {
  await client.query(
    "update pgshift.import_runs set options = options || jsonb_build_object('replaced', $2::jsonb) where run_id = $1",
    [runId, JSON.stringify({ dependents } satisfies ReplacedDependents)],
  );
}

export async function readReplaced(client: pg.ClientBase, runId: string): Promise<readonly Dependent[]> {
  const { rows } = await client.query(
    "select options->'replaced' as replaced from pgshift.import_runs where run_id = $1",
    [runId],
  );
  return (rows[0]?.replaced as ReplacedDependents | null)?.dependents ?? [];
}

function described(d: Dependent): string {
  return `${d.kind === "other" ? d.object : `${d.kind} ${d.object}`} (depended on ${d.dependsOn})`;
}

/**
 * After the load: pgshift's own views and foreign keys that the replace dropped are created again
 * (a foreign key NOT VALID, then validated; one whose referenced key is gone is a warning); the
 * user's objects dropped with --cascade are listed in `ctx.dropped`.
 */
export async function recreateDependents(ctx: RunContext): Promise<void> {
  if (ctx.ifExists !== "replace") return;
  const dependents = await withClient(ctx.pool, (c) => readReplaced(c, ctx.runId));
  for (const d of dependents) if (d.createdBy === "user") ctx.dropped.push(described(d));
  const schema = ctx.plan.targetSchema;
  // A view over another dropped view can only be created after it: passes until nothing more succeeds.
  let views = dependents.filter((d) => d.view);
  for (let pass = 0; views.length > 0; pass++) {
    const failed: Dependent[] = [];
    const results: StepResult[] = [];
    for (const d of views) {
      const r = await step(ctx, `recreate:view:${d.view!.targetName}`, async (client) => {
        await client.query(`set local search_path = ${quoteQualified(undefined, schema)}`);
        if (await relationExists(client, schema, d.view!.targetName)) return "skipped";
        await client.query(d.view!.sql!);
        return "done";
      });
      results.push(r);
      if (r.status === "failed") failed.push(d);
    }
    if (failed.length === 0 || failed.length === views.length) {
      for (const d of failed)
        ctx.warnings.push(
          `view ${d.object} (pgshift's, dropped by the replace) not recreated: ${ctx.steps.get(`recreate:view:${d.view!.targetName}`)?.detail}`,
        );
      break;
    }
    // Failures of this pass are retried by the next: only the last attempt is reported.
    for (const r of results.filter((r) => r.status === "failed"))
      ctx.stepResults.splice(ctx.stepResults.lastIndexOf(r), 1);
    views = failed;
  }
  for (const d of dependents.filter((d) => d.foreignKey)) {
    const { table, constraint } = d.foreignKey!;
    const added = await step(ctx, `recreate:add:${table}:${constraint.targetName}`, async (client) => {
      if (await constraintExists(client, schema, table, constraint.targetName)) return "skipped";
      await client.query(constraint.addSql);
      return "done";
    });
    if (added.status === "failed") {
      ctx.warnings.push(
        `foreign key ${constraint.targetName} on ${table} (pgshift's, dropped by the replace) not recreated: ${added.detail}`,
      );
      continue;
    }
    const validated = await step(
      ctx,
      `recreate:validate:${table}:${constraint.targetName}`,
      async (client) => {
        await client.query(constraint.validateSql);
        return "done";
      },
    );
    if (validated.status === "failed")
      ctx.warnings.push(
        `foreign key ${constraint.targetName} on ${table} recreated but left NOT VALID (enforced for new rows only): ${validated.detail}`,
      );
  }
}
