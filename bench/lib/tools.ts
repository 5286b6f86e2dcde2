import { execFileSync, spawnSync } from "node:child_process";
import pg from "pg";
import { quoteQualified } from "../../src/pg/quote.ts";

export function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/**
 * Makes sure the Debian package `pgloader` is installed (the bench installs it when missing, as root,
 * with apt-get). Returns a reason when it cannot be had.
 */
export function ensurePgloader(
  log: (message: string) => void,
): { ok: true; installed: boolean } | { ok: false; reason: string } {
  if (onPath("pgloader")) return { ok: true, installed: false };
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    return {
      ok: false,
      reason: "pgloader is not installed and the bench is not root: run `sudo apt-get install -y pgloader`",
    };
  }
  log("installing the Debian package pgloader (apt-get install -y pgloader)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let result = spawnSync("apt-get", ["install", "-y", "-qq", "pgloader"], {
    env,
    encoding: "utf8",
  });
  if (result.status !== 0) {
    spawnSync("apt-get", ["update", "-qq"], { env, encoding: "utf8" });
    result = spawnSync("apt-get", ["install", "-y", "-qq", "pgloader"], {
      env,
      encoding: "utf8",
    });
  }
  if (result.status !== 0 || !onPath("pgloader")) {
    return {
      ok: false,
      reason: `apt-get install pgloader failed: ${(result.stderr || result.stdout || "").trim().slice(-400)}`,
    };
  }
  return { ok: true, installed: true };
}

export function commandOutput(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: "utf8" }).trim();
}

/** Row counts per table as the server sees them (every contender is checked the same way). */
export async function countRows(
  url: string,
  schema: string,
  tables: readonly string[],
): Promise<Record<string, number | null>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const counts: Record<string, number | null> = {};
    for (const table of tables) {
      try {
        const result = await client.query<{ n: string }>(
          `select count(*) as n from ${quoteQualified(schema, table)}`,
        );
        counts[table] = Number(result.rows[0]!.n);
      } catch {
        counts[table] = null;
      }
    }
    return counts;
  } finally {
    await client.end();
  }
}

/** Secondary indexes and foreign keys present in a schema, to show each contender finished the job. */
export async function schemaObjects(
  url: string,
  schema: string,
): Promise<{ indexes: number; foreignKeys: number; validForeignKeys: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const indexes = await client.query<{ n: string }>(
      "select count(*) as n from pg_indexes where schemaname = $1",
      [schema],
    );
    const fks = await client.query<{ n: string; valid: string }>(
      `select count(*) as n, count(*) filter (where convalidated) as valid
         from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where n.nspname = $1 and c.contype = 'f'`,
      [schema],
    );
    return {
      indexes: Number(indexes.rows[0]!.n),
      foreignKeys: Number(fks.rows[0]!.n),
      validForeignKeys: Number(fks.rows[0]!.valid),
    };
  } finally {
    await client.end();
  }
}
