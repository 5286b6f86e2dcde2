import type pg from "pg";
import { parsePointer } from "../documents/json-pointer.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { primaryKeyColumn } from "./build-next.ts";

/**
 * A reference between two tables of a dataset: each row of `from` whose document holds a value at
 * `pointer` (or whose column `column` is set) must find a row of `to` with that key.
 */
export interface DatasetForeignKey {
  from: string;
  /** JSON pointer into the referencing row's document ("/device/k_number"). */
  pointer?: string;
  /** Or a column of the referencing table (an extra --column). */
  column?: string;
  to: string;
  /** How reports name it (default "from/pointer -> to"). */
  name?: string;
}

export interface ForeignKeyCheck {
  name: string;
  from: string;
  to: string;
  /** Referencing rows whose value has no row in `to`. */
  orphans: number;
  /** The first orphaned values (distinct), at most 10. */
  sample: string[];
  ok: boolean;
  error?: string;
}

const SAMPLE = 10;

export const foreignKeyName = (fk: DatasetForeignKey): string =>
  fk.name ?? `${fk.from}${fk.pointer ?? `.${fk.column}`} -> ${fk.to}`;

/** Problems of a dataset's foreign keys against its tables (empty when valid). */
export function foreignKeyProblems(fks: readonly DatasetForeignKey[], tables: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [i, fk] of fks.entries()) {
    const at = `foreignKeys[${i}]`;
    if (!tables.includes(fk.from)) problems.push(`${at}: "from" must name a table of the dataset`);
    if (!tables.includes(fk.to)) problems.push(`${at}: "to" must name a table of the dataset`);
    if ((fk.pointer === undefined) === (fk.column === undefined))
      problems.push(`${at}: give either "pointer" or "column"`);
    if (fk.pointer !== undefined) {
      try {
        parsePointer(fk.pointer);
      } catch (error) {
        problems.push(`${at}: ${(error as Error).message}`);
      }
    }
  }
  return problems;
}

/**
 * Counts, per foreign key, the referencing rows of the next version without a referenced row (values
 * compared as text against the referenced table's primary key), with the first orphaned values.
 */
export async function checkForeignKeys(
  pool: pg.Pool,
  next: string,
  fks: readonly DatasetForeignKey[],
): Promise<ForeignKeyCheck[]> {
  return Promise.all(
    fks.map(async (fk): Promise<ForeignKeyCheck> => {
      const name = foreignKeyName(fk);
      const base = { name, from: fk.from, to: fk.to };
      const key = await primaryKeyColumn(pool, next, fk.to);
      if (!key)
        return {
          ...base,
          orphans: 0,
          sample: [],
          ok: false,
          error: `${fk.to} has no primary key to reference`,
        };
      const value = fk.pointer !== undefined ? "f.doc #>> $1::text[]" : `f.${quoteIdent(fk.column!)}::text`;
      const params = fk.pointer !== undefined ? [parsePointer(fk.pointer)] : [];
      try {
        const { rows } = await pool.query(
          `select count(*)::bigint as orphans, (array_agg(distinct v order by v))[1:${SAMPLE}] as sample
             from (select ${value} as v from ${quoteQualified(next, fk.from)} f) refs
            where v is not null
              and not exists (select 1 from ${quoteQualified(next, fk.to)} t where t.${quoteIdent(key)}::text = refs.v)`,
          params,
        );
        const orphans = Number(rows[0].orphans);
        return { ...base, orphans, sample: rows[0].sample ?? [], ok: orphans === 0 };
      } catch (error) {
        return { ...base, orphans: 0, sample: [], ok: false, error: (error as Error).message };
      }
    }),
  );
}
