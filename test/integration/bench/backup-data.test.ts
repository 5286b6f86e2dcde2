import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import {
  BACKUP_TABLES,
  EXPECTED_INDEXES,
  generateBackupDataset,
  restoredComplete,
} from "../../../bench/lib/backup-data.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("bkdata");

test("the backup scenario's database: sized by pg_database_size, its shape, and the completeness check", async () => {
  const dataset = await generateBackupDataset(db().url, 48, { parallel: 2 });
  const mb = dataset.bytes / 1024 ** 2;
  // the calibration load predicts the size: within 15 % of the target
  assert.ok(mb > 48 * 0.85 && mb < 48 * 1.15, `database is ${mb.toFixed(1)} MB for a 48 MB target`);
  assert.deepEqual(Object.keys(dataset.rows), [...BACKUP_TABLES]);
  assert.equal(dataset.rows.sites, 200);
  assert.equal(dataset.rows.devices, 5000);
  assert.equal(dataset.rows.status_codes, 10);
  assert.ok(dataset.rows.readings! > 200_000);
  assert.ok(dataset.bytesPerRow > 100 && dataset.bytesPerRow < 400, `${dataset.bytesPerRow} bytes/row`);

  const client = new pg.Client({ connectionString: db().url });
  await client.connect();
  try {
    const shape = await client.query<{ ids: string; nulls: string; statuses: string; kinds: string }>(
      `select count(distinct id) as ids, count(*) filter (where note is null) as nulls,
              count(distinct status) as statuses,
              (select string_agg(data_type, ',' order by ordinal_position) from information_schema.columns
                where table_name = 'readings') as kinds
         from readings`,
    );
    assert.equal(Number(shape.rows[0]!.ids), dataset.rows.readings);
    assert.equal(Number(shape.rows[0]!.nulls), Math.floor(dataset.rows.readings! / 7));
    assert.equal(Number(shape.rows[0]!.statuses), 10);
    assert.equal(shape.rows[0]!.kinds, "bigint,integer,timestamp with time zone,numeric,text,text");

    const complete = await restoredComplete(db().url, dataset.rows);
    assert.deepEqual(complete, { complete: true, rows: dataset.rows, indexes: EXPECTED_INDEXES });
    // a copy missing one row, or one index, is not a finished restore
    await client.query("delete from readings where id = 1");
    assert.equal((await restoredComplete(db().url, dataset.rows)).complete, false);
    await client.query("insert into readings select 1, 1, now(), 1, 'ok', null");
    await client.query("drop index readings_recorded_at");
    const noIndex = await restoredComplete(db().url, dataset.rows);
    assert.equal(noIndex.complete, false);
    assert.equal(noIndex.indexes, EXPECTED_INDEXES - 1);
  } finally {
    await client.end();
  }
});
