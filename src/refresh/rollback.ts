import { userInfo } from "node:os";
import type pg from "pg";
import { UsageError } from "../errors.ts";
import { withRefreshLock } from "./refresh-lock.ts";
import { NoPreviousVersionError } from "./refresh-errors.ts";
import { ensureRefreshSchema } from "./refresh-schema.ts";
import { previousSchemaName } from "./refresh-dataset.ts";
import { swapSchemas } from "./schema-swap.ts";

export interface RollbackOptions {
  pool: pg.Pool;
  dataset: string;
  by?: string;
  reason?: string;
  lockTimeoutMs?: number;
}

export interface RollbackResult {
  dataset: string;
  schema: string;
  /** The version now live again. */
  version: number;
  /** The version that was live, kept as `<schema>__prev_<version>`. */
  rolledBack: number;
  swap: { attempts: number; lockHeldMs: number };
  durationMs: number;
}

/** Puts the newest previous version back live in one schema swap; the live one becomes previous. */
export async function rollbackDataset(options: RollbackOptions): Promise<RollbackResult> {
  const { pool, dataset } = options;
  const started = performance.now();
  await ensureRefreshSchema(pool);
  return withRefreshLock(pool, dataset, async () => {
    const { rows } = await pool.query(
      `select version, schema_name, status from pgshift.refresh_versions
        where dataset = $1 and status in ('live', 'previous') order by version desc`,
      [dataset],
    );
    const live = rows.find((r) => r.status === "live");
    if (!live) throw new UsageError(`dataset "${dataset}" has no live version`);
    const target = rows.find((r) => r.status === "previous" && r.version < live.version);
    if (!target) throw new NoPreviousVersionError(dataset);
    const schema: string = live.schema_name;
    const keptAs = previousSchemaName(schema, live.version);
    const swap = await swapSchemas(pool, {
      renames: [
        { from: schema, to: keptAs },
        { from: target.schema_name, to: schema },
      ],
      ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}),
      record: async (client) => {
        await client.query(
          "update pgshift.refresh_versions set status = 'previous', schema_name = $3, retired_at = now() where dataset = $1 and version = $2",
          [dataset, live.version, keptAs],
        );
        await client.query(
          `update pgshift.refresh_versions set status = 'live', schema_name = $3, retired_at = null, switched_at = now(), switched_by = $4, reason = $5
            where dataset = $1 and version = $2`,
          [
            dataset,
            target.version,
            schema,
            options.by ?? userInfo().username,
            options.reason ?? `rollback from version ${live.version}`,
          ],
        );
      },
    });
    return {
      dataset,
      schema,
      version: target.version,
      rolledBack: live.version,
      swap,
      durationMs: performance.now() - started,
    };
  });
}
