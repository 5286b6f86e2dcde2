import { PgshiftError } from "../errors.ts";
import { withClient } from "../pg/pool.ts";
import { quoteQualified } from "../pg/quote.ts";
import type { TablePlan } from "../schema/plan.ts";
import { crashPoint } from "./crash-points.ts";
import type { UntranslatedObject } from "./create-triggers.ts";
import { recordStep } from "./import-state.ts";
import { constraintExists, relationExists, type RunContext, runParallel, step } from "./run-context.ts";

/**
 * The finishing steps after the rows are in: keys, indexes, CHECK and foreign keys (NOT VALID, then
 * VALIDATE), identity sequences, views and ANALYZE; each recorded as a step, so --resume skips what is done.
 */
/**
 * Builds keys, indexes and ANALYZE of tables whose rows are all in (finishTable), `limit` tables at
 * a time, in the order they were added. The first failure stops it: nothing new starts, and drained()
 * rejects with that failure once the builds under way have ended.
 */
export class Finisher {
  private readonly queue: TablePlan[] = [];
  private running = 0;
  private limit = 1;
  private stopped = false;
  private failure: { error: unknown } | undefined;
  private waiters: (() => void)[] = [];

  constructor(private readonly ctx: RunContext) {}

  add(table: TablePlan): void {
    this.queue.push(table);
    this.pump();
  }

  widen(limit: number): void {
    this.limit = Math.max(this.limit, limit);
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && !this.failure && this.running < this.limit && this.queue.length > 0) {
      const table = this.queue.shift()!;
      this.running++;
      finishTable(this.ctx, table).then(
        () => this.settle(),
        (error: unknown) => {
          this.failure ??= { error };
          this.settle();
        },
      );
    }
    if (this.running === 0 && (this.queue.length === 0 || this.stopped || this.failure)) {
      for (const wake of this.waiters.splice(0)) wake();
    }
  }

  private settle(): void {
    this.running--;
    this.pump();
  }

  /** Resolves when nothing is running and nothing more will start; rejects with the first failure. */
  async drained(): Promise<void> {
    if (!(this.running === 0 && (this.queue.length === 0 || this.stopped || this.failure)))
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure.error;
  }
}

export async function buildTableKeys(ctx: RunContext, table: TablePlan): Promise<void> {
  const schema = ctx.plan.targetSchema;
  for (const key of table.keys) {
    crashPoint("keys:before");
    const r = await step(
      ctx,
      `key:${table.targetName}:${key.targetName}`,
      async (client) => {
        if (await constraintExists(client, schema, table.targetName, key.targetName)) return "skipped";
        await client.query(key.sql);
        return "done";
      },
      { beforeCommit: "keys:before-commit", afterCommit: "keys:after-commit" },
    );
    if (r.status === "failed")
      ctx.warnings.push(`key not created: ${table.targetName} ${key.kind} ${key.targetName}: ${r.detail}`);
  }
}

export async function buildTableIndex(ctx: RunContext, index: TablePlan["indexes"][number]): Promise<void> {
  const schema = ctx.plan.targetSchema;
  crashPoint("index:before");
  const r = await step(
    ctx,
    `index:${index.targetName}`,
    async (client) => {
      if (await relationExists(client, schema, index.targetName)) return "skipped";
      await client.query(index.sql);
      return "done";
    },
    { beforeCommit: "index:before-commit", afterCommit: "index:after-commit" },
  );
  if (r.status === "failed") ctx.warnings.push(`index ${index.targetName} not created: ${r.detail}`);
}

export async function analyzeTable(ctx: RunContext, table: TablePlan): Promise<void> {
  const name = `analyze:${table.targetName}`;
  if (ctx.steps.get(name)?.status === "done") return;
  crashPoint("analyze:before");
  await withClient(ctx.pool, async (client) => {
    await client.query(`analyze ${quoteQualified(ctx.plan.targetSchema, table.targetName)}`);
    await recordStep(client, ctx.runId, name, "done");
  });
  ctx.steps.set(name, { step: name, status: "done", detail: null });
  crashPoint("analyze:after");
}

/**
 * Keys, indexes and ANALYZE of one table whose rows are all in: run while other tables still load,
 * so that PostgreSQL builds them while pgshift is busy reading and encoding.
 */
export async function finishTable(ctx: RunContext, table: TablePlan): Promise<void> {
  await buildTableKeys(ctx, table);
  for (const index of table.indexes) await buildTableIndex(ctx, index);
  await analyzeTable(ctx, table);
  ctx.finished.add(table.sourceName);
}

export async function buildKeys(ctx: RunContext): Promise<void> {
  const tables = ctx.plan.tables.filter((t) => !ctx.finished.has(t.sourceName));
  await runParallel(tables, ctx.jobs, (table) => buildTableKeys(ctx, table));
}

export async function buildIndexes(ctx: RunContext): Promise<void> {
  const all = ctx.plan.tables
    .filter((t) => !ctx.finished.has(t.sourceName))
    .flatMap((table) => table.indexes.map((index) => ({ table, index })));
  await runParallel(all, ctx.jobs, ({ index }) => buildTableIndex(ctx, index));
}

export async function addConstraints(ctx: RunContext): Promise<void> {
  const schema = ctx.plan.targetSchema;
  // Adding NOT VALID is instant but locks both tables of a foreign key: one at a time.
  for (const table of ctx.plan.tables) {
    for (const constraint of [...table.checks, ...table.foreignKeys]) {
      crashPoint("constraint:before-add");
      const r = await step(ctx, `add:${table.targetName}:${constraint.targetName}`, async (client) => {
        if (await constraintExists(client, schema, table.targetName, constraint.targetName)) return "skipped";
        await client.query(constraint.addSql);
        return "done";
      });
      crashPoint("constraint:after-add");
      if (r.status === "failed")
        ctx.warnings.push(
          `${constraint.kind} ${constraint.targetName} on ${table.targetName} not created (${constraint.sourceSql}): ${r.detail}`,
        );
    }
  }
  // VALIDATE scans without blocking writers; validations of one table run one after another.
  await runParallel(ctx.plan.tables, ctx.jobs, async (table) => {
    for (const constraint of [...table.checks, ...table.foreignKeys]) {
      if (ctx.steps.get(`add:${table.targetName}:${constraint.targetName}`)?.status === "failed") continue;
      crashPoint("constraint:before-validate");
      const r = await step(ctx, `validate:${table.targetName}:${constraint.targetName}`, async (client) => {
        await client.query(constraint.validateSql);
        return "done";
      });
      crashPoint("constraint:after-validate");
      if (r.status === "failed")
        ctx.warnings.push(
          `${constraint.kind} ${constraint.targetName} on ${table.targetName} left NOT VALID (enforced for new rows only): ${r.detail}`,
        );
    }
  });
}

export async function setIdentities(ctx: RunContext): Promise<void> {
  for (const table of ctx.plan.tables) {
    if (!table.identitySql) continue;
    crashPoint("identity:before");
    const r = await step(ctx, `identity:${table.targetName}`, async (client) => {
      await client.query(table.identitySql!);
      return "done";
    });
    crashPoint("identity:after");
    if (r.status === "failed")
      throw new PgshiftError(
        "identity_failed",
        `setting the identity of ${table.targetName} failed: ${r.detail}`,
      );
  }
}

export async function createViews(ctx: RunContext, untranslated: UntranslatedObject[]): Promise<void> {
  for (const view of ctx.plan.views) {
    if (!view.sql) continue;
    crashPoint("view:before");
    const r = await step(ctx, `view:${view.targetName}`, async (client) => {
      await client.query(`set local search_path = ${quoteQualified(undefined, ctx.plan.targetSchema)}`);
      if (ctx.ifExists === "append" && (await relationExists(client, ctx.plan.targetSchema, view.targetName)))
        return "skipped";
      await client.query(view.sql!);
      return "done";
    });
    crashPoint("view:after");
    if (r.status === "failed") {
      ctx.warnings.push(
        `view ${view.sourceName} not created: ${r.detail}. Its SQLite SQL: ${view.sourceSql}`,
      );
      untranslated.push({
        kind: "view",
        name: view.sourceName,
        reason: `PostgreSQL rejected the translation: ${r.detail ?? "unknown error"}`,
        sql: view.sourceSql,
      });
    }
  }
}

export async function analyzeTables(ctx: RunContext): Promise<void> {
  const tables = ctx.plan.tables.filter((t) => !ctx.finished.has(t.sourceName));
  await runParallel(tables, ctx.jobs, (table) => analyzeTable(ctx, table));
}
