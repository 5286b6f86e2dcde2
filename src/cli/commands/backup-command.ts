import { parseDuration } from "../../duration.ts";
import type { Command } from "commander";
import { ExitCode, UsageError } from "../../errors.ts";
import { hmacKeyFromEnv, type SigningKey, signingKeyFromFile } from "../../verify/report.ts";
import type { PassphraseSource } from "../../backup/passphrase.ts";
import type { RecoveryWindow } from "../../backup/recovery-window.ts";
import type { GfsPolicy } from "../../backup/retention.ts";
import { action } from "../action.ts";
import { auditRestore } from "../audit-operation.ts";
import type { CommandContext } from "../context.ts";
import { renderTable } from "../output.ts";
import { registerOffsiteCommands, type S3Flags, s3Options, s3Target } from "./backup-offsite-command.ts";

/** The backup modules, loaded when a backup command runs: other commands start without them. */
const backup = () => import("../../backup/index.ts");

interface RepoFlags {
  repo: string;
  instance?: string;
}

function instanceOf(ctx: CommandContext, flags: RepoFlags) {
  return { name: flags.instance ?? ctx.settings.localName, baseDir: ctx.settings.localDir };
}

function passphrase(flags: {
  passphraseFile?: string;
  passphraseEnv?: string;
}): PassphraseSource | undefined {
  if (flags.passphraseFile && flags.passphraseEnv)
    throw new UsageError("pass either --passphrase-file or --passphrase-env, not both");
  if (flags.passphraseFile) return { file: flags.passphraseFile };
  if (flags.passphraseEnv) return { env: flags.passphraseEnv };
  return undefined;
}

function policy(flags: { daily: string; weekly: string; monthly: string; yearly: string }): GfsPolicy {
  const out = {} as GfsPolicy;
  for (const k of ["daily", "weekly", "monthly", "yearly"] as const) {
    if (!/^\d+$/.test(flags[k])) throw new UsageError(`--${k} must be a whole number, got ${flags[k]}`);
    out[k] = Number(flags[k]);
  }
  return out;
}

function signing(flags: { signKey?: string; hmacKeyEnv?: string }): SigningKey | undefined {
  if (flags.signKey && flags.hmacKeyEnv)
    throw new UsageError("pass either --sign-key or --hmac-key-env, not both");
  if (flags.signKey) return signingKeyFromFile(flags.signKey);
  if (flags.hmacKeyEnv) return hmacKeyFromEnv(flags.hmacKeyEnv);
  return undefined;
}

/** Where restore and drill read from: --engine manifest (default) or pgbackrest (with --instance). */
function repositoryOf(ctx: CommandContext, flags: RepoFlags & { engine: string }) {
  if (flags.engine !== "manifest" && flags.engine !== "pgbackrest")
    throw new UsageError(`--engine must be manifest or pgbackrest, got ${flags.engine}`);
  return flags.engine === "pgbackrest"
    ? { repository: flags.repo, engine: "pgbackrest" as const, pgbackrestInstance: instanceOf(ctx, flags) }
    : { repository: flags.repo };
}

function targets(flags: { targetTime?: string; targetLsn?: string }) {
  if (flags.targetTime !== undefined && flags.targetLsn !== undefined)
    throw new UsageError("pass either --target-time or --target-lsn, not both");
  return {
    ...(flags.targetTime !== undefined ? { targetTime: flags.targetTime } : {}),
    ...(flags.targetLsn !== undefined ? { targetLsn: flags.targetLsn } : {}),
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function gfsOptions(cmd: Command): Command {
  return cmd
    .option("--daily <n>", "daily backups kept", "7")
    .option("--weekly <n>", "weekly backups kept", "4")
    .option("--monthly <n>", "monthly backups kept", "12")
    .option("--yearly <n>", "yearly backups kept", "7");
}

export function registerBackupCommands(program: Command): void {
  const group = program
    .command("backup")
    .description(
      "backups (pg_dump, pg_basebackup + WAL archive), GFS retention, point-in-time restore, drills",
    );

  s3Options(
    group
      .command("setup")
      .description(
        "configure WAL archiving into --repo (managed instance: applied and restarted; --to: checked); --engine pgbackrest: stanza, archive-push, optional S3 repo2",
      )
      .requiredOption("--repo <dir>", "backup repository directory")
      .option(
        "--engine <engine>",
        "manifest (archive_command cp, pg_basebackup) | pgbackrest (archive-push, stanza)",
        "manifest",
      )
      .option("--instance <name>", "managed local instance (default: the configured one)")
      .option(
        "--archive-timeout <seconds>",
        "force a WAL segment switch after this many idle seconds (bounds RPO)",
        "60",
      )
      .option(
        "--cipher-passphrase-file <file>",
        "pgbackrest: encrypt the repositories (aes-256-cbc), passphrase in this file",
      )
      .option(
        "--cipher-passphrase-env <var>",
        "pgbackrest: encrypt the repositories, passphrase in this environment variable",
      ),
  ).action(
    action(
      async (
        ctx,
        flags: RepoFlags &
          S3Flags & {
            archiveTimeout: string;
            engine: string;
            cipherPassphraseFile?: string;
            cipherPassphraseEnv?: string;
          },
      ) => {
        const lib = await backup();
        const seconds = Number(flags.archiveTimeout);
        if (!Number.isInteger(seconds) || seconds < 1)
          throw new UsageError("--archive-timeout must be a whole number >= 1");
        repositoryOf(ctx, { ...flags, engine: flags.engine });
        const cipher = passphrase({
          ...(flags.cipherPassphraseFile ? { passphraseFile: flags.cipherPassphraseFile } : {}),
          ...(flags.cipherPassphraseEnv ? { passphraseEnv: flags.cipherPassphraseEnv } : {}),
        });
        if (flags.engine === "pgbackrest") {
          if (ctx.settings.to)
            throw new UsageError(
              "--engine pgbackrest sets up a managed local instance (--instance), not --to",
            );
          const s3 = flags.s3 !== undefined ? await s3Target(ctx, flags) : undefined;
          const result = await lib.setupPgBackRest({
            instance: instanceOf(ctx, flags),
            repository: flags.repo,
            archiveTimeoutSeconds: seconds,
            ...(cipher ? { cipherPassphrase: cipher } : {}),
            ...(s3 ? { s3 } : {}),
          });
          ctx.out.result(
            { ...result, offsite: s3 ? lib.describeOffsiteTarget(s3) : undefined },
            () =>
              `pgBackRest stanza ${result.stanza}: archive-push into ${flags.repo}${s3 ? ` and repo2 ${lib.describeOffsiteTarget(s3)}` : ""}; check passed (config ${result.config}, mode 0600)`,
          );
          return undefined;
        }
        if (cipher) throw new UsageError("--cipher-passphrase-* go with --engine pgbackrest");
        if (flags.s3 !== undefined)
          throw new UsageError(
            "--s3 with --engine manifest: copy the repository with `pgshift backup offsite push`",
          );
        if (ctx.settings.to) {
          const check = await lib.checkArchiving(ctx.settings.to, {
            repository: flags.repo,
            archiveTimeoutSeconds: seconds,
          });
          ctx.out.result(check, () =>
            check.ok
              ? "WAL archiving is configured as wanted"
              : `WAL archiving is not configured; run on the server, then restart it:\n  ${check.changes.join("\n  ")}`,
          );
          return check.ok ? ExitCode.ok : ExitCode.failure;
        }
        const result = await lib.setupArchiving(instanceOf(ctx, flags), {
          repository: flags.repo,
          archiveTimeoutSeconds: seconds,
        });
        ctx.out.result(result, () =>
          result.changed.length
            ? `archiving into ${result.walDir}: set ${result.changed.join(", ")}${result.restarted ? " (instance restarted)" : ""}`
            : `archiving into ${result.walDir}: already configured`,
        );
        return undefined;
      },
    ),
  );

  group
    .command("run")
    .description(
      "take a backup: --type logical (pg_dump -Fc, optionally gpg-encrypted) or physical (pg_basebackup)",
    )
    .requiredOption("--repo <dir>", "backup repository directory")
    .option(
      "--type <type>",
      "logical | physical | full | diff | incr (pgBackRest, set up with --engine pgbackrest)",
      "logical",
    )
    .option("--instance <name>", "pgBackRest: the managed local instance")
    .option("--offsite", "pgBackRest: back up into the S3 repository (repo2, set up with --s3)")
    .option("--label <label>", "backup label (default: UTC time and type)")
    .option("--passphrase-file <file>", "encrypt (logical) with the passphrase in this file")
    .option("--passphrase-env <var>", "encrypt (logical) with the passphrase in this environment variable")
    .option("--schemas <list>", "logical: only these schemas (comma-separated)")
    .option("--tables <list>", "logical: only these tables (comma-separated)")
    .action(
      action(
        async (
          ctx,
          flags: {
            repo: string;
            instance?: string;
            type: string;
            offsite?: boolean;
            label?: string;
            passphraseFile?: string;
            passphraseEnv?: string;
            schemas?: string;
            tables?: string;
          },
        ) => {
          const lib = await backup();
          if (flags.type === "full" || flags.type === "diff" || flags.type === "incr") {
            const made = await lib.pgBackRestBackup(
              { instance: instanceOf(ctx, flags), repository: flags.repo },
              flags.type,
              { repo: flags.offsite ? 2 : 1 },
            );
            ctx.out.result(
              made,
              () =>
                `pgBackRest ${made.type} backup ${made.label} in repo${made.repo}${made.prior ? ` (on ${made.prior})` : ""}: ${mb(made.sizeBytes)}, ${mb(made.repositoryBytes)} in the repository, WAL ${made.startLsn}..${made.stopLsn}`,
            );
            return undefined;
          }
          if (flags.offsite)
            throw new UsageError(
              "--offsite backs up into pgBackRest's S3 repository (--type full|diff|incr); copy a logical or physical backup with `pgshift backup offsite push`",
            );
          const { url } = await ctx.targetUrl();
          const label = flags.label !== undefined ? { label: flags.label } : {};
          let result;
          if (flags.type === "logical") {
            const pass = passphrase(flags);
            result = await lib.runLogicalBackup({
              url,
              repository: flags.repo,
              ...label,
              ...(pass ? { passphrase: pass } : {}),
              ...(flags.schemas ? { schemas: flags.schemas.split(",") } : {}),
              ...(flags.tables ? { tables: flags.tables.split(",") } : {}),
            });
          } else if (flags.type === "physical") {
            result = await lib.runPhysicalBackup({ url, repository: flags.repo, ...label });
          } else
            throw new UsageError(`--type must be logical, physical, full, diff or incr, got ${flags.type}`);
          const e = result.entry;
          ctx.out.result(
            result,
            () =>
              `backup ${e.label} (${e.kind}${e.encrypted ? ", encrypted" : ""}): ${mb(e.sizeBytes)} in ${(e.durationMs / 1000).toFixed(1)} s, sha256 ${e.sha256}${e.startLsn ? `, WAL ${e.startLsn}..${e.endLsn}` : ""}\n  ${result.path}`,
          );
          return undefined;
        },
      ),
    );

  gfsOptions(
    group
      .command("list")
      .description("every backup with its GFS class; the recoverable window of the newest physical backup")
      .requiredOption("--repo <dir>", "backup repository directory")
      .option("--engine <engine>", "manifest | pgbackrest (with --instance)", "manifest")
      .option("--instance <name>", "pgBackRest: the managed local instance"),
  ).action(
    action(
      async (
        ctx,
        flags: {
          repo: string;
          engine: string;
          instance?: string;
          daily: string;
          weekly: string;
          monthly: string;
          yearly: string;
        },
      ) => {
        const lib = await backup();
        const windowText = (w: RecoveryWindow | undefined) =>
          w ? `\nrecoverable window (backup ${w.label}): ${lib.describeWindow(w)}` : "";
        if (repositoryOf(ctx, flags).engine === "pgbackrest") {
          const source = await lib.restoreSourceFor(repositoryOf(ctx, flags));
          const found = await source.backups();
          const retention = lib.selectRetained(
            found.map((b) => ({
              label: b.label,
              startedAt: b.startedAt,
              kind: b.type ?? "full",
              ...(b.prior ? { prior: b.prior } : {}),
            })),
            policy(flags),
            new Date(),
          );
          const decisions = new Map([...retention.keep, ...retention.expire].map((d) => [d.label, d]));
          const newest = found[found.length - 1];
          const window = newest ? await source.window(newest) : undefined;
          const backups = found.map((b) => ({ ...b, retention: decisions.get(b.label) }));
          ctx.out.result({ backups, window }, () => {
            const table = renderTable(
              ["label", "type", "started", "size", "WAL", "GFS"],
              backups.map((b) => [
                b.label,
                b.type ?? "?",
                b.startedAt,
                mb(b.sizeBytes),
                `${b.startLsn ?? "?"}..${b.endLsn ?? "?"}`,
                b.retention?.keep ? b.retention.classes.join(",") : "expire",
              ]),
            );
            return `${table}${windowText(window)}`;
          });
          return undefined;
        }
        const manifest = lib.readManifest(flags.repo);
        const retention = lib.selectRetained(
          manifest.backups.map((b) => ({ label: b.label, startedAt: b.startedAt, kind: b.kind })),
          policy(flags),
          new Date(),
        );
        const decisions = new Map([...retention.keep, ...retention.expire].map((d) => [d.label, d]));
        const physical = manifest.backups.filter((b) => b.kind === "physical");
        const window = physical.length
          ? await lib.recoveryWindow(flags.repo, physical[physical.length - 1]!)
          : undefined;
        const backups = manifest.backups.map((b) => ({ ...b, retention: decisions.get(b.label) }));
        ctx.out.result({ backups, window }, () => {
          const table = renderTable(
            ["label", "kind", "started", "size", "sha256", "GFS"],
            backups.map((b) => [
              b.label,
              b.kind + (b.encrypted ? " (gpg)" : ""),
              b.startedAt,
              mb(b.sizeBytes),
              b.sha256.slice(0, 12),
              b.retention?.keep ? b.retention.classes.join(",") : "expire",
            ]),
          );
          return `${table}${windowText(window)}`;
        });
        return undefined;
      },
    ),
  );

  gfsOptions(
    group
      .command("expire")
      .description("delete backups the GFS policy no longer keeps (--dry-run lists them)")
      .requiredOption("--repo <dir>", "backup repository directory")
      .option("--dry-run", "list what would be deleted, delete nothing")
      .option(
        "--wal-window <duration>",
        "archived WAL kept so that every moment this far back stays recoverable",
        "14d",
      )
      .option("--engine <engine>", "manifest (pg_dump / pg_basebackup backups) | pgbackrest", "manifest")
      .option("--instance <name>", "pgBackRest: the managed local instance"),
  ).action(
    action(
      async (
        ctx,
        flags: {
          repo: string;
          dryRun?: boolean;
          walWindow: string;
          engine: string;
          instance?: string;
          daily: string;
          weekly: string;
          monthly: string;
          yearly: string;
        },
      ) => {
        const lib = await backup();
        if (flags.engine === "pgbackrest") {
          const r = await lib.pgBackRestExpire(
            { instance: instanceOf(ctx, flags), repository: flags.repo },
            policy(flags),
            {
              dryRun: Boolean(flags.dryRun),
            },
          );
          ctx.out.result(r, () =>
            [
              `${r.keep.length} kept, ${r.expire.length} ${r.dryRun ? "would be expired" : "expired"} (pgbackrest expire --set ${r.expiredSets.join(", ") || "-"})`,
              ...r.expire.map((d) => `  ${d.label} (${d.reason})`),
            ].join("\n"),
          );
          return undefined;
        }
        const result = lib.expireBackups({
          repository: flags.repo,
          policy: policy(flags),
          dryRun: Boolean(flags.dryRun),
          walWindowMs: parseDuration(flags.walWindow, "--wal-window"),
        });
        const verb = result.dryRun ? "would be deleted" : "deleted";
        ctx.out.result(result, () =>
          [
            `${result.keep.length} kept, ${result.expire.length} ${verb}`,
            ...result.expire.map(
              (d) => `  ${result.dryRun ? "would delete" : "deleted"} ${d.label} (${d.reason})`,
            ),
            `archived WAL: ${result.wal.delete.length} segment file(s) ${verb} (older than the ${flags.walWindow} window needs)` +
              (result.wal.keptForBackups.length
                ? `, ${result.wal.keptForBackups.length} older kept for the backups that need them`
                : ""),
          ].join("\n"),
        );
        return undefined;
      },
    ),
  );

  group
    .command("restore")
    .description(
      "restore a physical backup into a NEW instance (--into-instance) or over a stopped one (--in-place), to --target-time, --target-lsn or latest; a logical one into a new database (--database)",
    )
    .requiredOption("--repo <dir>", "backup repository directory")
    .option("--engine <engine>", "manifest (pg_basebackup + cp archive) | pgbackrest", "manifest")
    .option("--label <label>", "which backup (default: the newest that ends before the target)")
    .option("--target-time <iso>", "physical: recover to this time (ISO 8601 with zone); default: latest")
    .option("--target-lsn <lsn>", "physical: recover to this WAL position (e.g. 0/3000148)")
    .option(
      "--into-instance <name>",
      "physical: the managed instance to restore into (new unless --in-place)",
    )
    .option(
      "--in-place",
      "physical: restore over the existing, STOPPED instance (--into-instance, else --instance); its old data directory is kept aside until the restored server is up",
    )
    .option("--keep-old-data", "--in-place: keep the old data directory (renamed) after a successful restore")
    .option(
      "--instance <name>",
      "physical: the source managed instance (its superuser password is reused; pgbackrest: its pgbackrest.conf)",
    )
    .option("--database <name>", "logical: the new database on the target server")
    .option("--passphrase-file <file>", "logical: passphrase file for an encrypted backup")
    .option("--passphrase-env <var>", "logical: environment variable holding the passphrase")
    .action(
      action(
        async (
          ctx,
          flags: RepoFlags & {
            engine: string;
            label?: string;
            targetTime?: string;
            targetLsn?: string;
            intoInstance?: string;
            inPlace?: boolean;
            keepOldData?: boolean;
            database?: string;
            passphraseFile?: string;
            passphraseEnv?: string;
          },
        ) => {
          const lib = await backup();
          const label = flags.label !== undefined ? { label: flags.label } : {};
          if (flags.database) {
            if (flags.inPlace || flags.targetLsn || flags.engine !== "manifest")
              throw new UsageError(
                "--database restores a logical backup: --in-place, --target-lsn and --engine are for physical ones",
              );
            const { url } = await ctx.targetUrl();
            const pass = passphrase(flags);
            const result = await lib.restoreLogicalBackup({
              repository: flags.repo,
              serverUrl: url,
              database: flags.database,
              ...label,
              ...(pass ? { passphrase: pass } : {}),
            });
            // The restored database's trail (when the dump had one) carries the restore.
            await auditRestore(
              ctx.out,
              url,
              {
                detail: {
                  kind: "logical",
                  label: result.entry.label,
                  database: result.database,
                  backupSha256: result.entry.sha256,
                },
                report: JSON.stringify(result),
              },
              [result.database],
            );
            ctx.out.result(
              result,
              () =>
                `restored ${result.entry.label} into database ${result.database} in ${(result.durationMs / 1000).toFixed(1)} s`,
            );
            return undefined;
          }
          const source = instanceOf(ctx, flags);
          const into = flags.intoInstance ?? (flags.inPlace ? source.name : undefined);
          if (!into)
            throw new UsageError(
              "pass --into-instance NAME (physical, a new instance), --in-place (over the stopped instance) or --database NAME (logical)",
            );
          if (flags.keepOldData && !flags.inPlace)
            throw new UsageError("--keep-old-data goes with --in-place");
          const { localInstanceUrl } = await import("../../local/instance.ts");
          const password = decodeURIComponent(new URL(localInstanceUrl(source)).password);
          const result = await lib.restorePointInTime({
            ...repositoryOf(ctx, flags),
            ...label,
            ...targets(flags),
            into: { name: into, baseDir: ctx.settings.localDir },
            ...(flags.inPlace ? { inPlace: true } : {}),
            ...(flags.keepOldData ? { keepPreviousData: true } : {}),
            superuserPassword: password,
          });
          // Every database of the restored server with the trail records the restore (the trail itself came
          // back as of the target: a later anchor shows the rollback until `audit reseal` acknowledges it).
          await auditRestore(ctx.out, localInstanceUrl({ name: into, baseDir: ctx.settings.localDir }), {
            detail: {
              kind: "physical",
              engine: result.engine,
              label: result.backup.label,
              target: result.target,
              lastReplayedCommit: result.lastReplayedCommit ?? null,
              lastReplayedLsn: result.lastReplayedLsn ?? null,
              instance: result.instance,
              inPlace: result.inPlace,
            },
            report: JSON.stringify(result),
          });
          ctx.out.result(result, () =>
            [
              `restored ${result.backup.label} (${result.engine}) to ${lib.describeTarget(result.target)} ${result.inPlace ? "in place over" : "into"} instance ${result.instance} (${result.url}); last replayed commit ${result.lastReplayedCommit ?? "none"} at LSN ${result.lastReplayedLsn ?? "?"}; ready in ${(result.rtoMs / 1000).toFixed(1)} s`,
              ...(result.previousDataDir
                ? [
                    result.previousDataDir.kept
                      ? `  the old data directory is kept at ${result.previousDataDir.path}`
                      : `  the old data directory (kept at ${result.previousDataDir.path} during the restore) is removed`,
                  ]
                : []),
              `  archiving is off in the restored server; to back it up again: pgshift backup setup --repo DIR --instance ${result.instance}`,
            ].join("\n"),
          );
          return undefined;
        },
      ),
    );

  group
    .command("drill")
    .description(
      "prove a physical backup: restore into a scratch instance, pg_amcheck, per-table checksums, RTO/RPO, signed report",
    )
    .requiredOption("--repo <dir>", "backup repository directory")
    .option("--engine <engine>", "manifest (pg_basebackup + cp archive) | pgbackrest", "manifest")
    .option("--label <label>", "which backup (default: the newest that ends before the target)")
    .option("--target-time <iso>", "recover to this time (default: latest)")
    .option("--target-lsn <lsn>", "recover to this WAL position (e.g. 0/3000148)")
    .option(
      "--instance <name>",
      "the source managed instance (its superuser password is reused; pgbackrest: its pgbackrest.conf)",
    )
    .option("--scratch <name>", "scratch instance name (created and destroyed)", "drill")
    .option("--report <path>", "where to write the JSON evidence report")
    .option(
      "--sign-key <file>",
      "sign the report: a PEM Ed25519 private key, or a file holding an HMAC secret",
    )
    .option("--hmac-key-env <var>", "sign the report with HMAC-SHA256, key from this environment variable")
    .action(
      action(
        async (
          ctx,
          flags: RepoFlags & {
            engine: string;
            label?: string;
            targetTime?: string;
            targetLsn?: string;
            scratch: string;
            report?: string;
            signKey?: string;
            hmacKeyEnv?: string;
          },
        ) => {
          const lib = await backup();
          const source = instanceOf(ctx, flags);
          const { localInstanceUrl } = await import("../../local/instance.ts");
          const password = decodeURIComponent(new URL(localInstanceUrl(source)).password);
          const key = signing(flags);
          const { report, reportPath } = await lib.runDrill({
            ...repositoryOf(ctx, flags),
            ...(flags.label !== undefined ? { label: flags.label } : {}),
            ...targets(flags),
            scratch: { name: flags.scratch, baseDir: ctx.settings.localDir },
            superuserPassword: password,
            ...(flags.report ? { reportPath: flags.report } : {}),
            ...(key ? { signingKey: key } : {}),
          });
          ctx.out.result(report, () =>
            [
              `drill of ${report.backup?.label ?? "?"} (${report.engine}, to ${report.target}): ${report.ok ? "PASSED" : "FAILED"}${report.rtoMs !== undefined ? `, RTO ${(report.rtoMs / 1000).toFixed(1)} s` : ""}${report.rpoMs !== undefined ? `, RPO ${(report.rpoMs / 1000).toFixed(1)} s` : ""}`,
              ...report.checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`),
              `  ${report.tables.length} tables: ${report.tables.reduce((n, t) => n + t.rows, 0)} rows`,
              ...(reportPath
                ? [
                    `  report: ${reportPath}${report.signature ? ` (signed, ${report.signature.algorithm})` : ""}`,
                  ]
                : []),
            ].join("\n"),
          );
          return report.ok ? ExitCode.ok : ExitCode.failure;
        },
      ),
    );

  registerOffsiteCommands(group);
}
