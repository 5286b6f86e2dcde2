import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pg from "pg";
import {
  type LocalInstanceOptions,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../local/instance.ts";
import { chooseRunAs, giveTo } from "../local/run-as.ts";
import { BackupError } from "./backup-error.ts";
import { type PassphraseSource, readPassphrase } from "./passphrase.ts";
import { type GfsPolicy, type RetentionResult, selectRetained } from "./retention.ts";

/**
 * pgBackRest orchestration for a managed local instance: pgshift writes one pgbackrest.conf (mode 0600,
 * owned by the server's user; it holds the repository cipher passphrase), points archive_command at
 * `pgbackrest archive-push`, and runs every pgBackRest command as the server's user with --config.
 * pgBackRest's own retention is set so high that it never deletes; GFS expiry is done with `expire --set`.
 */
export interface PgBackRestOptions {
  instance: LocalInstanceOptions;
  repository: string;
  stanza?: string;
  /** Encrypt the repository (aes-256-cbc) with this passphrase. */
  cipherPassphrase?: PassphraseSource;
  archiveTimeoutSeconds?: number;
}

export interface PgBackRestBackup {
  label: string;
  type: "full" | "diff" | "incr";
  prior: string | undefined;
  startedAt: string;
  finishedAt: string;
  sizeBytes: number;
  repositoryBytes: number;
  startLsn: string;
  stopLsn: string;
  /** The first and last WAL segment the backup needs to become consistent. */
  archiveStart: string | undefined;
  archiveStop: string | undefined;
  /** Which database (system) of the stanza: matches PgBackRestArchive.databaseId. */
  databaseId: number | undefined;
}

/** The archived WAL of one database of the stanza (`info`'s archive min and max segment). */
export interface PgBackRestArchive {
  /** e.g. "15-1": the directory under archive/<stanza>/. */
  id: string;
  databaseId: number | undefined;
  min: string | undefined;
  max: string | undefined;
}

export interface PgBackRestLayout {
  stanza: string;
  config: string;
  pgpass: string;
  socketDir: string;
  dataDir: string;
}

const PGBACKREST = process.env.PGSHIFT_PGBACKREST ?? "pgbackrest";

export async function pgBackRestLayout(options: PgBackRestOptions): Promise<PgBackRestLayout> {
  const status = await localInstanceStatus(options.instance);
  if (status.state === "absent")
    throw new BackupError("pgbackrest", `no managed instance named ${status.name}`);
  return {
    stanza: options.stanza ?? "main",
    config: join(status.dir, "pgbackrest.conf"),
    pgpass: join(status.dir, "pgbackrest.pgpass"),
    socketDir: join(status.dir, "socket"),
    dataDir: status.dataDir,
  };
}

/**
 * Runs one pgBackRest command as the server's user with pgshift's config. `consoleLevel` (default warn)
 * is raised where a command reports what it found only in its log (verify names invalid files at info).
 */
export function runPgBackRest(
  options: PgBackRestOptions,
  l: PgBackRestLayout,
  args: string[],
  opts: { consoleLevel?: "warn" | "info" } = {},
): Promise<string> {
  const runAs = chooseRunAs(options.instance.env);
  return new Promise((resolvePromise, reject) => {
    execFile(
      PGBACKREST,
      [
        `--config=${l.config}`,
        `--stanza=${l.stanza}`,
        `--log-level-console=${opts.consoleLevel ?? "warn"}`,
        ...args,
      ],
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSFILE: l.pgpass, LC_ALL: "C" },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 3_600_000,
        ...(runAs.uid !== undefined ? { uid: runAs.uid, gid: runAs.gid } : {}),
      },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new BackupError(
              "pgbackrest",
              `pgbackrest ${args.join(" ")} failed: ${String(stderr || stdout || error.message).trim()}`,
            ),
          );
        else resolvePromise(String(stdout));
      },
    );
  });
}

/** Writes pgbackrest.conf, sets archiving to archive-push, restarts, stanza-create, check. */
export async function setupPgBackRest(
  options: PgBackRestOptions,
): Promise<{ stanza: string; config: string }> {
  await startLocalInstance(options.instance);
  const l = await pgBackRestLayout(options);
  const runAs = chooseRunAs(options.instance.env);
  const repo = resolve(options.repository);
  for (const dir of [repo, join(repo, "log"), join(repo, "lock"), l.socketDir]) {
    mkdirSync(dir, { recursive: true });
    giveTo(runAs, dir);
  }
  const url = new URL(localInstanceUrl(options.instance));
  const lines = [
    "[global]",
    `repo1-path=${repo}`,
    `log-path=${join(repo, "log")}`,
    `lock-path=${join(repo, "lock")}`,
    "log-level-file=info",
    "compress-type=zst",
    "repo1-retention-full-type=count",
    "repo1-retention-full=9999999",
    "start-fast=y",
  ];
  if (options.cipherPassphrase) {
    lines.push(
      "repo1-cipher-type=aes-256-cbc",
      `repo1-cipher-pass=${readPassphrase(options.cipherPassphrase).toString("utf8")}`,
    );
  }
  lines.push(
    "",
    `[${l.stanza}]`,
    `pg1-path=${l.dataDir}`,
    `pg1-port=${url.port}`,
    `pg1-socket-path=${l.socketDir}`,
    `pg1-user=${decodeURIComponent(url.username)}`,
  );
  writeFileSync(l.config, `${lines.join("\n")}\n`, { mode: 0o600 });
  writeFileSync(
    l.pgpass,
    `*:*:*:${decodeURIComponent(url.username)}:${decodeURIComponent(url.password).replace(/([:\\])/g, "\\$1")}\n`,
    { mode: 0o600 },
  );
  giveTo(runAs, l.config);
  giveTo(runAs, l.pgpass);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`alter system set unix_socket_directories = '${l.socketDir.replace(/'/g, "''")}'`);
    await client.query("alter system set archive_mode = 'on'");
    await client.query(
      `alter system set archive_command = '${`${PGBACKREST} --config=${l.config} --stanza=${l.stanza} archive-push %p`.replace(/'/g, "''")}'`,
    );
    await client.query(`alter system set archive_timeout = '${options.archiveTimeoutSeconds ?? 60}s'`);
  } finally {
    await client.end();
  }
  await stopLocalInstance(options.instance);
  await startLocalInstance(options.instance);
  await runPgBackRest(options, l, ["stanza-create"]);
  await runPgBackRest(options, l, ["check"]);
  return { stanza: l.stanza, config: l.config };
}

interface InfoBackup {
  label: string;
  type: "full" | "diff" | "incr";
  prior: string | null;
  timestamp: { start: number; stop: number };
  info: { size: number; repository: { delta: number } };
  lsn: { start: string; stop: string };
  archive?: { start: string | null; stop: string | null };
  database?: { id: number };
}

interface InfoArchive {
  id: string;
  min: string | null;
  max: string | null;
  database?: { id: number };
}

export async function pgBackRestInfo(
  options: PgBackRestOptions,
): Promise<{ backups: PgBackRestBackup[]; cipher: string; archives: PgBackRestArchive[] }> {
  const l = await pgBackRestLayout(options);
  const info = JSON.parse(await runPgBackRest(options, l, ["info", "--output=json"])) as {
    backup: InfoBackup[];
    archive?: InfoArchive[];
    cipher: string;
  }[];
  const stanza = info[0];
  return {
    cipher: stanza?.cipher ?? "none",
    backups: (stanza?.backup ?? []).map((b) => ({
      label: b.label,
      type: b.type,
      prior: b.prior ?? undefined,
      startedAt: new Date(b.timestamp.start * 1000).toISOString(),
      finishedAt: new Date(b.timestamp.stop * 1000).toISOString(),
      sizeBytes: b.info.size,
      repositoryBytes: b.info.repository.delta,
      startLsn: b.lsn.start,
      stopLsn: b.lsn.stop,
      archiveStart: b.archive?.start ?? undefined,
      archiveStop: b.archive?.stop ?? undefined,
      databaseId: b.database?.id,
    })),
    archives: (stanza?.archive ?? []).map((a) => ({
      id: a.id,
      databaseId: a.database?.id,
      min: a.min ?? undefined,
      max: a.max ?? undefined,
    })),
  };
}

export async function pgBackRestBackup(
  options: PgBackRestOptions,
  type: "full" | "diff" | "incr",
): Promise<PgBackRestBackup> {
  const l = await pgBackRestLayout(options);
  const before = new Set((await pgBackRestInfo(options)).backups.map((b) => b.label));
  await runPgBackRest(options, l, ["backup", `--type=${type}`]);
  const made = (await pgBackRestInfo(options)).backups.filter((b) => !before.has(b.label));
  if (made.length !== 1)
    throw new BackupError(
      "pgbackrest",
      `pgbackrest backup finished but info lists ${made.length} new backups`,
    );
  return made[0]!;
}

/**
 * GFS expiry of the pgBackRest repository: selectRetained over `info`, then `expire --set` for each
 * expired backup whose prior is kept or absent (expiring a full removes its dependents, all expired too).
 */
export async function pgBackRestExpire(
  options: PgBackRestOptions,
  policy: GfsPolicy,
  opts: { now?: Date; dryRun?: boolean } = {},
): Promise<RetentionResult & { expiredSets: string[]; dryRun: boolean }> {
  const l = await pgBackRestLayout(options);
  const { backups } = await pgBackRestInfo(options);
  const retention = selectRetained(
    backups.map((b) => ({
      label: b.label,
      startedAt: b.startedAt,
      kind: b.type,
      ...(b.prior ? { prior: b.prior } : {}),
    })),
    policy,
    opts.now ?? new Date(),
  );
  const expired = new Set(retention.expire.map((d) => d.label));
  const roots = backups
    .filter((b) => expired.has(b.label) && !(b.prior && expired.has(b.prior)))
    .map((b) => b.label);
  if (!opts.dryRun) for (const label of roots) await runPgBackRest(options, l, ["expire", `--set=${label}`]);
  return { ...retention, expiredSets: roots, dryRun: Boolean(opts.dryRun) };
}
