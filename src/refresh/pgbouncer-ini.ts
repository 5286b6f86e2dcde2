import { chmod, chown, readFile, rename, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UsageError } from "../errors.ts";

/** Where one alias of a pgbouncer.ini's `[databases]` section points. */
export interface AliasTarget {
  host: string | null;
  port: string | null;
  dbname: string;
}

/** One `key=value` of a pgbouncer connection string; values may be single-quoted ('' escapes '). */
interface Pair {
  key: string;
  value: string;
}

function parseConnectionString(text: string): Pair[] {
  const pairs: Pair[] = [];
  const pattern = /\s*([A-Za-z_]+)\s*=\s*('(?:[^']|'')*'|\S*)/gy;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) !== null && match[0].length > 0) {
    const raw = match[2]!;
    const value = raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'") : raw;
    pairs.push({ key: match[1]!.toLowerCase(), value });
  }
  return pairs;
}

const quoteValue = (value: string) => (/^[^\s']+$/.test(value) ? value : `'${value.replace(/'/g, "''")}'`);

interface AliasLine {
  index: number;
  prefix: string;
  pairs: Pair[];
  ending: string;
}

/** Lines with their endings, so that joining them gives the file back byte for byte. */
const splitLines = (text: string): string[] => text.match(/[^\n]*\n|[^\n]+$/g) ?? [];

function findAlias(lines: readonly string[], alias: string): AliasLine {
  let section = "";
  for (const [index, line] of lines.entries()) {
    const body = line.replace(/\r?\n$/, "");
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(body);
    if (header) {
      section = header[1]!.trim().toLowerCase();
      continue;
    }
    if (section !== "databases" || /^\s*[;#]/.test(body)) continue;
    const entry = /^(\s*("(?:[^"]|"")*"|[^=\s]+)\s*=\s*)(.*)$/.exec(body);
    if (!entry) continue;
    const key = entry[2]!.startsWith('"') ? entry[2]!.slice(1, -1).replace(/""/g, '"') : entry[2]!;
    if (key !== alias) continue;
    return {
      index,
      prefix: entry[1]!,
      pairs: parseConnectionString(entry[3]!),
      ending: line.slice(body.length),
    };
  }
  throw new UsageError(`alias "${alias}" is not in the [databases] section of the PgBouncer config`);
}

const targetOf = (pairs: readonly Pair[], alias: string): AliasTarget => ({
  host: pairs.find((p) => p.key === "host")?.value ?? null,
  port: pairs.find((p) => p.key === "port")?.value ?? null,
  dbname: pairs.find((p) => p.key === "dbname")?.value ?? alias,
});

/** Where `alias` points in the config text (dbname defaults to the alias itself, as in PgBouncer). */
export function readAliasTarget(text: string, alias: string): AliasTarget {
  return targetOf(findAlias(splitLines(text), alias).pairs, alias);
}

/**
 * The config text with the alias's line pointing at `target`: host, port and dbname replaced (added
 * when missing), every other setting of the line (user, password, pool_size...) and every other line
 * kept byte for byte.
 */
export function pointAlias(
  text: string,
  alias: string,
  target: AliasTarget,
): { text: string; oldLine: string; newLine: string } {
  const lines = splitLines(text);
  const found = findAlias(lines, alias);
  const pairs = found.pairs.map((p) => ({ ...p }));
  const set = (key: string, value: string | null) => {
    if (value === null) return;
    const pair = pairs.find((p) => p.key === key);
    if (pair) pair.value = value;
    else pairs.push({ key, value });
  };
  set("host", target.host);
  set("port", target.port);
  set("dbname", target.dbname);
  const newLine = `${found.prefix}${pairs.map((p) => `${p.key}=${quoteValue(p.value)}`).join(" ")}${found.ending}`;
  const oldLine = lines[found.index]!;
  lines[found.index] = newLine;
  return { text: lines.join(""), oldLine, newLine };
}

/** Where a PostgreSQL URL points, as an alias target. */
export function aliasTargetOfUrl(url: string): AliasTarget {
  const parsed = new URL(url);
  const dbname = decodeURIComponent(parsed.pathname.slice(1));
  if (!dbname) throw new UsageError("a blue/green database URL must name its database");
  return { host: parsed.hostname || null, port: parsed.port || null, dbname };
}

/** Same database? dbname must match; host and port when both sides name one (localhost = 127.0.0.1). */
export function sameTarget(a: AliasTarget, b: AliasTarget): boolean {
  const host = (h: string | null) => (h === "localhost" || h === "::1" ? "127.0.0.1" : h);
  if (a.dbname !== b.dbname) return false;
  if (a.host && b.host && host(a.host) !== host(b.host)) return false;
  return !(a.port && b.port && a.port !== b.port);
}

export async function readConfig(path: string): Promise<string> {
  return readFile(path, "utf8");
}

/**
 * Replaces the file atomically (temp file in the same directory, then rename), keeping its mode and
 * owner: PgBouncer runs as another user and must still read it.
 */
export async function writeConfig(path: string, text: string): Promise<void> {
  const info = await stat(path);
  const temp = join(dirname(path), `.${basename(path)}.pgshift-${process.pid}`);
  await writeFile(temp, text, { mode: 0o600 });
  await chmod(temp, info.mode & 0o7777);
  await chown(temp, info.uid, info.gid).catch(() => undefined);
  await rename(temp, path);
}
