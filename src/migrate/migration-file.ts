import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { MigrationFileError } from "./errors.ts";
import {
  commentBody,
  lineAtByte,
  loadSqlParser,
  nodeKind,
  requiresNoTransaction,
  type SqlStatement,
  SqlSyntaxError,
  scanTokens,
  splitStatements,
} from "./sql-statements.ts";

/** One direction of a migration: its statements and whether they run inside one transaction. */
export interface MigrationSection {
  statements: SqlStatement[];
  /** False when `-- migrate:no-transaction` applies: statements then run one by one, autocommitted. */
  transaction: boolean;
  /** 1-based line of the section marker. */
  line: number;
}

/** A migration file, parsed. */
export interface MigrationFile {
  /** UTC timestamp `YYYYMMDDHHMMSS`; orders migrations. */
  version: string;
  name: string;
  /** Path as given (dir joined with the file name). */
  file: string;
  /** sha256 (hex) of the file's bytes: what drift detection compares. */
  sha256: string;
  up: MigrationSection;
  /** Absent when the file has no `-- migrate:down` section: `down` refuses it. */
  down: MigrationSection | null;
}

/** `20240131120000_create_users.sql`: 14-digit UTC timestamp, underscore, lower-case name. */
const FILE_NAME = /^(\d{14})_([a-z0-9][a-z0-9_]*)\.sql$/;
export const VERSION_PATTERN = /^\d{14}$/;
const NAME_PATTERN = /^[a-z0-9][a-z0-9_]*$/;

export const MARKER_UP = "migrate:up";
export const MARKER_DOWN = "migrate:down";
export const MARKER_NO_TRANSACTION = "migrate:no-transaction";

/** How far ahead of this machine's clock a version may be (another machine's clock may run ahead). */
export const VERSION_FUTURE_TOLERANCE_MS = 24 * 3600 * 1000;

/**
 * Why `version` is not a usable migration version, or undefined: it must be a real UTC time
 * `YYYYMMDDHHMMSS` from 1970 on and not in the future (beyond VERSION_FUTURE_TOLERANCE_MS). A version
 * like 99999999999999 would sort after every migration ever written and make each of them
 * "out of order".
 */
export function versionProblem(version: string, now: Date = new Date()): string | undefined {
  if (!VERSION_PATTERN.test(version)) return "is not 14 digits YYYYMMDDHHMMSS";
  const [year, month, day, hour, minute, second] = [0, 4, 6, 8, 10, 12].map((at, i) =>
    Number(version.slice(at, at + (i === 0 ? 4 : 2))),
  ) as [number, number, number, number, number, number];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(time);
  if (
    year < 1970 ||
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  )
    return "is not a valid UTC date and time YYYYMMDDHHMMSS (from 1970 on)";
  if (time > now.getTime() + VERSION_FUTURE_TOLERANCE_MS)
    return `is in the future (${date.toISOString()}); a version is the UTC time the migration was written`;
  return undefined;
}

/** Splits a file name into version and name, or undefined when it is not a migration file name. */
export function parseMigrationFileName(fileName: string): { version: string; name: string } | undefined {
  const match = FILE_NAME.exec(fileName);
  return match ? { version: match[1]!, name: match[2]! } : undefined;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Parses a migration's text. Section markers are found with PostgreSQL's scanner, so a
 * `-- migrate:down` inside a string or a function body is not mistaken for one.
 */
export function parseMigrationSource(
  text: string,
  file: string,
): { up: MigrationSection; down: MigrationSection | null } {
  // An editor's byte order mark is not SQL before the first marker (the checksum still covers it).
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  const bytes = Buffer.from(text, "utf8");
  let tokens: ReturnType<typeof scanTokens>;
  try {
    tokens = scanTokens(text);
  } catch (error) {
    throw new MigrationFileError(
      file,
      undefined,
      `cannot be scanned as SQL: ${(error as Error).message}`,
      error,
    );
  }
  interface Marker {
    kind: "up" | "down" | "no-transaction";
    start: number;
    end: number;
    line: number;
  }
  const markers: Marker[] = [];
  let firstSql: { start: number } | undefined;
  for (const token of tokens) {
    if (token.tokenName !== "SQL_COMMENT") {
      if (token.tokenName !== "C_COMMENT") firstSql ??= token;
      continue;
    }
    const body = commentBody(token.text);
    if (!body.toLowerCase().startsWith("migrate:")) continue;
    const word = body.split(/\s/)[0]!.toLowerCase();
    const line = lineAtByte(bytes, token.start);
    const kind =
      word === MARKER_UP
        ? "up"
        : word === MARKER_DOWN
          ? "down"
          : word === MARKER_NO_TRANSACTION
            ? "no-transaction"
            : undefined;
    if (!kind)
      throw new MigrationFileError(
        file,
        line,
        `unknown marker "-- ${word}" (known: -- ${MARKER_UP}, -- ${MARKER_DOWN}, -- ${MARKER_NO_TRANSACTION})`,
      );
    if (markers.some((m) => m.kind === kind))
      throw new MigrationFileError(file, line, `"-- migrate:${kind}" appears twice`);
    markers.push({ kind, start: token.start, end: token.end, line });
  }
  const up = markers.find((m) => m.kind === "up");
  if (!up) throw new MigrationFileError(file, undefined, `has no "-- ${MARKER_UP}" section marker`);
  const down = markers.find((m) => m.kind === "down");
  const sections = [up, down].filter((m): m is Marker => m !== undefined).sort((a, b) => a.start - b.start);
  if (firstSql && firstSql.start < sections[0]!.start)
    throw new MigrationFileError(
      file,
      lineAtByte(bytes, firstSql.start),
      `SQL before the first section marker; put it under "-- ${MARKER_UP}" or "-- ${MARKER_DOWN}"`,
    );
  const noTx = markers.find((m) => m.kind === "no-transaction");
  const build = (marker: Marker): MigrationSection => {
    const next = sections.find((m) => m.start > marker.start);
    const end = next ? next.start : bytes.length;
    const sectionText = bytes.subarray(marker.end, end).toString("utf8");
    const transaction = !(
      noTx &&
      (noTx.start < sections[0]!.start || (noTx.start > marker.start && noTx.start < end))
    );
    let statements: SqlStatement[];
    try {
      statements = splitStatements(sectionText, marker.line);
    } catch (error) {
      if (error instanceof SqlSyntaxError)
        throw new MigrationFileError(file, error.line, error.message, error);
      throw error;
    }
    for (const statement of statements) {
      if (nodeKind(statement.node)[0] === "TransactionStmt")
        throw new MigrationFileError(
          file,
          statement.line,
          `remove transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT): pgshift runs each migration in its own transaction, or statement by statement with "-- ${MARKER_NO_TRANSACTION}"`,
        );
    }
    if (transaction) {
      for (const statement of statements) {
        const needs = requiresNoTransaction(statement.node);
        if (needs)
          throw new MigrationFileError(
            file,
            statement.line,
            `${needs} cannot run inside a transaction; add "-- ${MARKER_NO_TRANSACTION}" to this section (its statements then run one by one)`,
          );
      }
    }
    return { statements, transaction, line: marker.line };
  };
  return { up: build(up), down: down ? build(down) : null };
}

/** Reads and parses one migration file. */
export async function readMigrationFile(dir: string, fileName: string): Promise<MigrationFile> {
  await loadSqlParser();
  const parts = parseMigrationFileName(fileName);
  const file = join(dir, fileName);
  if (!parts) throw new MigrationFileError(file, undefined, "is not named <YYYYMMDDHHMMSS>_<name>.sql");
  const problem = versionProblem(parts.version);
  if (problem)
    throw new MigrationFileError(
      file,
      undefined,
      `version ${parts.version} ${problem}; rename the file (pgshift migrate new NAME writes the right one)`,
    );
  const bytes = readFileSync(file);
  const { up, down } = parseMigrationSource(bytes.toString("utf8"), file);
  return { ...parts, file, sha256: sha256Hex(bytes), up, down };
}

/**
 * Every migration in `dir`, ordered by version. Files that look like migrations but are misnamed
 * are errors (a typo must not silently skip a migration); other files (README.md) are ignored.
 */
export async function loadMigrations(dir: string): Promise<MigrationFile[]> {
  if (!existsSync(dir))
    throw new UsageError(
      `migrations directory ${dir} does not exist; create a migration with "pgshift migrate new NAME" or pass --dir`,
      { dir },
    );
  await loadSqlParser();
  const names = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const migrations: MigrationFile[] = [];
  const seen = new Map<string, string>();
  for (const name of names) {
    const migration = await readMigrationFile(dir, name);
    const other = seen.get(migration.version);
    if (other)
      throw new MigrationFileError(
        migration.file,
        undefined,
        `has the same version ${migration.version} as ${other}; versions must be unique`,
      );
    seen.set(migration.version, migration.file);
    migrations.push(migration);
  }
  return migrations.sort((a, b) => a.version.localeCompare(b.version));
}

/** `YYYYMMDDHHMMSS` in UTC. */
export function versionAt(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

export interface NewMigrationOptions {
  dir: string;
  name: string;
  /** Defaults to now; a later second is taken when the version is already used. */
  now?: Date;
  /** Start with `-- migrate:no-transaction` (for CREATE INDEX CONCURRENTLY). */
  noTransaction?: boolean;
}

/** Creates `dir/<version>_<name>.sql` from a template and returns its path and version. */
export function newMigration(options: NewMigrationOptions): {
  file: string;
  version: string;
} {
  const name = options.name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, "_");
  if (!NAME_PATTERN.test(name))
    throw new UsageError(
      `migration name "${options.name}" must be letters, digits and underscores (e.g. add_users_email_index)`,
    );
  mkdirSync(options.dir, { recursive: true });
  const used = new Set(
    readdirSync(options.dir)
      .map((f) => parseMigrationFileName(f)?.version)
      .filter(Boolean),
  );
  let time = (options.now ?? new Date()).getTime();
  let version = versionAt(new Date(time));
  while (used.has(version)) {
    time += 1000;
    version = versionAt(new Date(time));
  }
  const file = join(options.dir, `${version}_${name}.sql`);
  const header = options.noTransaction ? `-- ${MARKER_NO_TRANSACTION}\n` : "";
  writeFileSync(file, `${header}-- ${MARKER_UP}\n\n\n-- ${MARKER_DOWN}\n\n`, {
    flag: "wx",
  });
  return { file, version };
}
