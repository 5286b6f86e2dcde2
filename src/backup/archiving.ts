import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import pg from "pg";
import { UsageError } from "../errors.ts";
import {
  type LocalInstanceOptions,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../local/instance.ts";
import { chooseRunAs, giveTo } from "../local/run-as.ts";

/**
 * WAL archiving into a repository with stock PostgreSQL only: archive_command copies each finished
 * segment to `<repository>/wal/` (never overwriting one already there), archive_timeout bounds the
 * RPO by forcing a segment switch on a quiet server.
 */
export interface ArchivingOptions {
  repository: string;
  /** Seconds; default 60. */
  archiveTimeoutSeconds?: number;
}

export interface ArchiveSettings {
  archive_mode: string;
  archive_command: string;
  archive_timeout: string;
  wal_level: string;
}

export interface ArchivingSetupResult {
  walDir: string;
  wanted: ArchiveSettings;
  before: ArchiveSettings;
  changed: (keyof ArchiveSettings)[];
  restarted: boolean;
}

export interface ArchivingCheckResult {
  ok: boolean;
  wanted: ArchiveSettings;
  actual: ArchiveSettings;
  /** `ALTER SYSTEM` lines to run (then restart the server) for what differs. */
  changes: string[];
}

export function walDirOf(repository: string): string {
  return join(resolve(repository), "wal");
}

function quoteConf(path: string): string {
  if (/['"\\%\n]/.test(path))
    throw new UsageError(`repository path ${path} must not contain quotes, backslashes, % or new lines`);
  return path;
}

export function wantedArchiveSettings(options: ArchivingOptions): ArchiveSettings {
  const wal = quoteConf(walDirOf(options.repository));
  return {
    archive_mode: "on",
    archive_command: `test ! -f "${wal}/%f" && cp "%p" "${wal}/%f.tmp" && mv "${wal}/%f.tmp" "${wal}/%f"`,
    archive_timeout: `${options.archiveTimeoutSeconds ?? 60}s`,
    wal_level: "replica",
  };
}

async function current(client: pg.Client): Promise<ArchiveSettings> {
  const r = await client.query<{ name: keyof ArchiveSettings; setting: string; unit: string | null }>(
    "select name, setting, unit from pg_settings where name = any($1)",
    [["archive_mode", "archive_command", "archive_timeout", "wal_level"]],
  );
  const out = {} as ArchiveSettings;
  for (const row of r.rows) out[row.name] = row.name === "archive_timeout" ? `${row.setting}s` : row.setting;
  return out;
}

function differs(wanted: ArchiveSettings, actual: ArchiveSettings): (keyof ArchiveSettings)[] {
  return (Object.keys(wanted) as (keyof ArchiveSettings)[]).filter(
    (k) => !(k === "wal_level" && actual.wal_level === "logical") && wanted[k] !== actual[k],
  );
}

/** For a server pgshift does not manage: compares its settings and says exactly what to change. */
export async function checkArchiving(url: string, options: ArchivingOptions): Promise<ArchivingCheckResult> {
  const wanted = wantedArchiveSettings(options);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const actual = await current(client);
    const changes = differs(wanted, actual).map(
      (k) => `ALTER SYSTEM SET ${k} = '${wanted[k].replace(/'/g, "''")}';`,
    );
    return { ok: changes.length === 0, wanted, actual, changes };
  } finally {
    await client.end();
  }
}

/** For a managed local instance: sets archiving with ALTER SYSTEM and restarts it when needed. */
export async function setupArchiving(
  instance: LocalInstanceOptions,
  options: ArchivingOptions,
): Promise<ArchivingSetupResult> {
  const walDir = walDirOf(options.repository);
  mkdirSync(walDir, { recursive: true });
  // The server runs archive_command as its own (unprivileged) user: it must own the WAL directory.
  const runAs = chooseRunAs(instance.env);
  giveTo(runAs, walDir);
  const wanted = wantedArchiveSettings(options);
  await startLocalInstance(instance);
  const client = new pg.Client({ connectionString: localInstanceUrl(instance) });
  await client.connect();
  let before: ArchiveSettings;
  let changed: (keyof ArchiveSettings)[];
  let needsRestart: boolean;
  try {
    before = await current(client);
    changed = differs(wanted, before);
    for (const k of changed) await client.query(`alter system set ${k} = '${wanted[k].replace(/'/g, "''")}'`);
    needsRestart = changed.includes("archive_mode") || changed.includes("wal_level");
    if (changed.length && !needsRestart) await client.query("select pg_reload_conf()");
  } finally {
    await client.end();
  }
  if (needsRestart) {
    await stopLocalInstance(instance);
    await startLocalInstance(instance);
  }
  return { walDir, wanted, before, changed, restarted: needsRestart };
}
