import { loadModule, type Node, parseSync, type ScanToken, scanSync } from "libpg-query";

/** One top-level statement of a migration section, as PostgreSQL's own parser sees it. */
export interface SqlStatement {
  /** The statement's text, exactly as written (without the trailing semicolon). */
  text: string;
  /** 1-based line in the file where the statement starts. */
  line: number;
  /** The parse tree: `{ CreateStmt: {...} }`, `{ IndexStmt: {...} }`, ... */
  node: Node;
  /** Comments between the previous statement and this one (e.g. lint ignores), without `--`. */
  leadingComments: string[];
}

let loaded: Promise<void> | undefined;

/** libpg-query compiles its WebAssembly asynchronously once; the sync API works afterwards. */
export function loadSqlParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

export class SqlSyntaxError extends Error {
  constructor(
    message: string,
    /** 1-based line relative to the text given to splitStatements. */
    readonly line: number,
  ) {
    super(message);
  }
}

/** Line (1-based) of a byte offset in a UTF-8 buffer. */
export function lineAtByte(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/** Scanner tokens of `sql`; offsets are UTF-8 byte offsets. */
export function scanTokens(sql: string): ScanToken[] {
  return scanSync(sql).tokens;
}

/**
 * Splits SQL into top-level statements with the real PostgreSQL parser (dollar quotes, nested
 * comments, E'' strings all handled as the server does). `firstLine` is the file line of `sql`'s
 * first character. Call `await loadSqlParser()` once before.
 */
export function splitStatements(sql: string, firstLine = 1): SqlStatement[] {
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(sql);
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const position = details?.cursorPosition ?? 0;
    const line = sql.slice(0, position).split("\n").length;
    throw new SqlSyntaxError((error as Error).message, firstLine + line - 1);
  }
  const bytes = Buffer.from(sql, "utf8");
  const comments = scanTokens(sql).filter(
    (t) => t.tokenName === "SQL_COMMENT" || t.tokenName === "C_COMMENT",
  );
  const statements: SqlStatement[] = [];
  let previousEnd = 0;
  for (const raw of parsed.stmts ?? []) {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
    const text = bytes.subarray(start, end).toString("utf8").trim();
    const leadingComments = comments
      .filter((c) => c.start >= previousEnd && c.end <= start)
      .map((c) => commentBody(c.text));
    previousEnd = end;
    if (!raw.stmt) continue;
    statements.push({
      text,
      line: firstLine + lineAtByte(bytes, start) - 1,
      node: raw.stmt,
      leadingComments,
    });
  }
  return statements;
}

/** `-- text` -> `text`, `/* text *\/` -> `text`. */
export function commentBody(comment: string): string {
  if (comment.startsWith("--")) return comment.slice(2).trim();
  if (comment.startsWith("/*") && comment.endsWith("*/")) return comment.slice(2, -2).trim();
  return comment.trim();
}

/** The node's type name and body: `{ IndexStmt: {...} }` -> ["IndexStmt", {...}]. */
export function nodeKind(node: Node): [string, Record<string, unknown>] {
  const [kind, body] = Object.entries(node as Record<string, unknown>)[0] ?? ["", {}];
  return [kind, (body ?? {}) as Record<string, unknown>];
}

/** Statements PostgreSQL refuses to run inside a transaction block. */
export function requiresNoTransaction(node: Node): string | undefined {
  const [kind, body] = nodeKind(node);
  if (kind === "IndexStmt" && body.concurrent) return "CREATE INDEX CONCURRENTLY";
  if (kind === "ReindexStmt" && JSON.stringify(body.params ?? []).includes('"concurrently"'))
    return "REINDEX CONCURRENTLY";
  if (kind === "DropStmt" && body.concurrent) return "DROP INDEX CONCURRENTLY";
  if (kind === "VacuumStmt") return body.is_vacuumcmd ? "VACUUM" : undefined;
  if (kind === "CreatedbStmt") return "CREATE DATABASE";
  if (kind === "DropdbStmt") return "DROP DATABASE";
  if (kind === "AlterTableStmt") {
    const cmds = (body.cmds ?? []) as {
      AlterTableCmd?: { subtype?: string; def?: unknown };
    }[];
    for (const cmd of cmds) {
      const c = cmd.AlterTableCmd;
      if (c?.subtype === "AT_DetachPartition" && JSON.stringify(c.def ?? {}).includes('"concurrent":true'))
        return "ALTER TABLE ... DETACH PARTITION CONCURRENTLY";
    }
  }
  return undefined;
}
