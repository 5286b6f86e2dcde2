import { toSnakeCase } from "../../schema/naming.ts";
import type { TargetTable } from "./target-catalog.ts";

/** The ORMs' own bookkeeping tables: never loaded, never reported as missing on either side. */
export const ORM_BOOKKEEPING = new Set(["_prisma_migrations", "django_migrations", "alembic_version"]);

/** A user's mapping file: {"table": "target", "table.col": "target_col"}. */
export type NameMap = Readonly<Record<string, string>>;

export interface ColumnMapping {
  source: string;
  target: string;
  how: MatchKind;
}

export interface TableMapping {
  source: string;
  target: string;
  how: MatchKind;
  columns: ColumnMapping[];
  /** Source columns with no target column. */
  unmatchedSource: string[];
  /** Target columns no source column fills. */
  unmatchedTarget: string[];
}

export type MatchKind = "map-file" | "exact" | "case-insensitive" | "snake_case";

export interface Mapping {
  tables: TableMapping[];
  /** Source tables with no target table. */
  missingTables: string[];
  /** Target tables no source table fills (bookkeeping tables left out). */
  extraTables: string[];
}

/** Finds `name` among `candidates`: the map file's word, then exact, case-insensitive, snake_case. */
export function matchName(
  name: string,
  candidates: readonly string[],
  mapped: string | undefined,
): { target: string; how: MatchKind } | undefined {
  if (mapped !== undefined)
    return candidates.includes(mapped) ? { target: mapped, how: "map-file" } : undefined;
  if (candidates.includes(name)) return { target: name, how: "exact" };
  const lower = candidates.filter((c) => c.toLowerCase() === name.toLowerCase());
  if (lower.length === 1) return { target: lower[0]!, how: "case-insensitive" };
  const snake = toSnakeCase(name);
  const snaked = candidates.filter((c) => c === snake || toSnakeCase(c) === snake);
  if (snaked.length === 1) return { target: snaked[0]!, how: "snake_case" };
  return undefined;
}

/** Maps source tables and their columns onto the target's tables. Pure. */
export function mapTables(
  source: readonly { name: string; columns: readonly string[] }[],
  target: readonly TargetTable[],
  names: NameMap = {},
): Mapping {
  const usable = target.filter((t) => !ORM_BOOKKEEPING.has(t.name));
  const tableNames = usable.map((t) => t.name);
  const mapping: Mapping = { tables: [], missingTables: [], extraTables: [] };
  for (const table of source) {
    if (ORM_BOOKKEEPING.has(table.name)) continue;
    const found = matchName(table.name, tableNames, names[table.name]);
    if (!found) {
      mapping.missingTables.push(table.name);
      continue;
    }
    const into = usable.find((t) => t.name === found.target)!;
    const columnNames = into.columns.map((c) => c.name);
    const columns: ColumnMapping[] = [];
    const unmatchedSource: string[] = [];
    for (const column of table.columns) {
      const hit = matchName(column, columnNames, names[`${table.name}.${column}`]);
      if (hit && !columns.some((c) => c.target === hit.target))
        columns.push({ source: column, target: hit.target, how: hit.how });
      else unmatchedSource.push(column);
    }
    mapping.tables.push({
      source: table.name,
      target: found.target,
      how: found.how,
      columns,
      unmatchedSource,
      unmatchedTarget: columnNames.filter((n) => !columns.some((c) => c.target === n)),
    });
  }
  mapping.extraTables = tableNames.filter((n) => !mapping.tables.some((t) => t.target === n));
  return mapping;
}

/**
 * Tables in foreign-key order (referenced first), and the groups of tables that reference each other
 * in a cycle (a table referencing itself included), which must load with their constraints deferred.
 */
export function foreignKeyOrder(
  tables: readonly string[],
  edges: readonly { table: string; references: string }[],
): { order: string[]; cycles: string[][] } {
  const inSet = new Set(tables);
  const deps = new Map(tables.map((t) => [t, new Set<string>()]));
  for (const e of edges)
    if (inSet.has(e.table) && inSet.has(e.references)) deps.get(e.table)!.add(e.references);
  // Tarjan's strongly connected components, emitted referenced-first.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of deps.get(v)!) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };
  for (const t of [...tables].sort()) if (!idx.has(t)) visit(t);
  return {
    order: components.flat(),
    cycles: components.filter((c) => c.length > 1 || deps.get(c[0]!)!.has(c[0]!)),
  };
}
