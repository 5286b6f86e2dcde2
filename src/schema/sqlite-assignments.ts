import { type Node, nodeKind, type Replacement, walk } from "./sql-rewrite.ts";
import { categoryOf, categoryOfType, type IdiomContext, intValue, type ViewColumn } from "./sqlite-idioms.ts";

/**
 * Values assigned to columns (UPDATE ... SET, INSERT ... VALUES) in the column's PostgreSQL type, as
 * SQLite's affinity would store them: 0/1 into a boolean, text dates into timestamps, the clock
 * into a timestamp without losing UTC, numbers into a column read as unix time.
 */
export function assignmentReplacements(
  tree: unknown,
  ctx: IdiomContext,
  columnsOf: (relation: string) => ReadonlyMap<string, ViewColumn> | undefined,
): Replacement[] {
  const replacements: Replacement[] = [];
  const assign = (column: ViewColumn | undefined, value: unknown) => {
    if (!column || value === undefined) return;
    const extent = ctx.text.extent(value);
    if (!extent) return;
    const kind = nodeKind(value);
    const category = categoryOf(value, ctx);
    const target = categoryOfType(column.pgType);
    const push = (build: Replacement["build"]) => replacements.push({ ...extent, build });
    if (column.conversion === "boolean") {
      const v = intValue(value);
      if (v === 0 || v === 1) push(() => (v ? "true" : "false"));
      else if (category === "number") push((render) => `((${render(extent)}) <> 0)`);
      return;
    }
    if (column.conversion === "epoch-s" || column.conversion === "epoch-ms") {
      const scale = column.conversion === "epoch-ms" ? " / 1000.0" : "";
      if (category === "number" || category === "text" || category === "literal")
        push((render) => `to_timestamp((${render(extent)})::double precision${scale})`);
      return;
    }
    if (kind?.[0] === "SQLValueFunction" && kind[1].op === "SVFOP_CURRENT_TIMESTAMP") {
      if (target === "timestamp")
        return push(() => "date_trunc('second', current_timestamp at time zone 'UTC')");
      if (target === "timestamptz") return push(() => "date_trunc('second', current_timestamp)");
      if (target === "date") return push(() => "(current_timestamp at time zone 'UTC')::date");
    }
    if (category === "text" && target !== "text" && target !== "unknown")
      push((render) => `(${render(extent)})::${column.pgType}`);
  };
  for (const node of walk(tree)) {
    const kind = nodeKind(node);
    if (kind?.[0] === "UpdateStmt") {
      const columns = columnsOf((kind[1].relation as Node).relname as string);
      for (const target of (kind[1].targetList as { ResTarget: Node }[]) ?? [])
        assign(columns?.get((target.ResTarget.name as string).toLowerCase()), target.ResTarget.val);
    } else if (kind?.[0] === "InsertStmt") {
      const columns = columnsOf((kind[1].relation as Node).relname as string);
      const names = ((kind[1].cols as { ResTarget: Node }[]) ?? []).map((c) =>
        (c.ResTarget.name as string).toLowerCase(),
      );
      const select = (kind[1].selectStmt as { SelectStmt?: Node } | undefined)?.SelectStmt;
      const rows = (select?.valuesLists as { List: { items: unknown[] } }[] | undefined) ?? [];
      const targets = (select?.targetList as { ResTarget: Node }[] | undefined) ?? [];
      if (names.length === 0) continue;
      for (const row of rows) row.List.items.forEach((value, i) => assign(columns?.get(names[i]!), value));
      targets.forEach((t, i) => assign(columns?.get(names[i]!), t.ResTarget.val));
    }
  }
  return replacements;
}
