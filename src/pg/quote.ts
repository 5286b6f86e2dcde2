/**
 * The one way identifiers enter SQL. Values never do: they are always bind parameters.
 */

/** Quotes an identifier for PostgreSQL: `quoteIdent('my "t"')` -> `"my ""t"""`. Always quotes, so case and reserved words survive. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error("empty identifier");
  if (name.includes("\u0000")) throw new Error("identifier contains a NUL character");
  return `"${name.replace(/"/g, '""')}"`;
}

/** `quoteQualified('public', 'users')` -> `"public"."users"`. */
export function quoteQualified(schema: string | undefined, name: string): string {
  return schema ? `${quoteIdent(schema)}.${quoteIdent(name)}` : quoteIdent(name);
}

/** A SQL string literal, for the few places PostgreSQL accepts no parameter (DDL defaults, COMMENT). */
export function quoteLiteral(value: string): string {
  if (value.includes("\u0000")) throw new Error("literal contains a NUL character");
  const escaped = value.replace(/'/g, "''");
  return value.includes("\\") ? `E'${escaped.replace(/\\/g, "\\\\")}'` : `'${escaped}'`;
}
