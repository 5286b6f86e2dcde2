import type { Command } from "commander";
import { ExitCode, UsageError } from "../../errors.ts";
import type { OffsiteFailure } from "../../backup/offsite.ts";
import type { OffsiteTarget, OffsiteTargetInput } from "../../backup/offsite-target.ts";
import { action } from "../action.ts";
import type { CommandContext } from "../context.ts";
import { renderTable } from "../output.ts";

const backup = () => import("../../backup/index.ts");

export interface S3Flags {
  s3?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3AccessKeyId?: string;
  s3SecretEnv?: string;
  s3SecretFile?: string;
  s3CaFile?: string;
}

/** The `--s3-*` flags shared by `backup offsite` and `backup setup --engine pgbackrest`. */
export function s3Options(cmd: Command): Command {
  return cmd
    .option("--s3 <url>", "off-site target s3://BUCKET/PREFIX (or PGSHIFT_S3_URL)")
    .option(
      "--s3-endpoint <url>",
      "S3-compatible server https://host:port (or PGSHIFT_S3_ENDPOINT; default AWS)",
    )
    .option("--s3-region <region>", "region (or PGSHIFT_S3_REGION, AWS_REGION; default us-east-1)")
    .option("--s3-access-key-id <id>", "access key id (or PGSHIFT_S3_ACCESS_KEY_ID, AWS_ACCESS_KEY_ID)")
    .option(
      "--s3-secret-env <var>",
      "environment variable holding the secret access key (default AWS_SECRET_ACCESS_KEY)",
    )
    .option("--s3-secret-file <file>", "file whose first line is the secret access key")
    .option("--s3-ca-file <pem>", "CA certificate that signed the endpoint's certificate");
}

/**
 * The validated target of the `--s3-*` flags, with the secret registered for scrubbing, so that not even
 * a server's error message can print it. The SDK's Node-version notice is silenced: it is about SDK
 * releases after January 2027, not about this run, and would break `--json` stderr lines.
 */
export async function s3Target(ctx: CommandContext, flags: S3Flags): Promise<OffsiteTarget> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const lib = await backup();
  const input: OffsiteTargetInput = {
    ...(flags.s3 !== undefined ? { url: flags.s3 } : {}),
    ...(flags.s3Endpoint !== undefined ? { endpoint: flags.s3Endpoint } : {}),
    ...(flags.s3Region !== undefined ? { region: flags.s3Region } : {}),
    ...(flags.s3AccessKeyId !== undefined ? { accessKeyId: flags.s3AccessKeyId } : {}),
    ...(flags.s3SecretEnv !== undefined ? { secretEnv: flags.s3SecretEnv } : {}),
    ...(flags.s3SecretFile !== undefined ? { secretFile: flags.s3SecretFile } : {}),
    ...(flags.s3CaFile !== undefined ? { caFile: flags.s3CaFile } : {}),
  };
  const target = lib.loadOffsiteTarget(input);
  ctx.out.addSecret(lib.readSecret(target.secret, "S3 secret access key").toString("utf8"));
  return target;
}

/** 3 when something does not match its checksum (off-site or local), 1 for any other failure. */
function exitFor(failures: readonly OffsiteFailure[], interrupted: boolean): number {
  if (failures.some((f) => f.code === "mismatch" || f.code === "local_corrupted")) return ExitCode.mismatch;
  return failures.length || interrupted ? ExitCode.failure : ExitCode.ok;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function failureLines(failures: readonly OffsiteFailure[], notRun: readonly string[]): string[] {
  return [
    ...failures.map((f) => `  FAIL ${f.path}: ${f.message}`),
    ...(notRun.length
      ? [`  not copied (held back so the copy never lists what it lacks): ${notRun.join(", ")}`]
      : []),
  ];
}

function jobs(ctx: CommandContext): number {
  const value = ctx.globals.jobs;
  if (value === undefined) return 4;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`--jobs must be a whole number >= 1, got ${value}`);
  return Number(value);
}

export function registerOffsiteCommands(group: Command): void {
  const offsite = group
    .command("offsite")
    .description(
      "copy a backup repository to S3-compatible storage and back, every object checked by sha256",
    );

  s3Options(
    offsite
      .command("push")
      .description(
        "upload what the repository holds and the bucket lacks (or holds differently); read each upload back",
      )
      .requiredOption("--repo <dir>", "backup repository directory (pgshift's or pgBackRest's)")
      .option("--prune", "delete off-site objects the repository no longer holds (after `backup expire`)")
      .option("--dry-run", "list what would be uploaded and pruned, change nothing")
      .option("--verify", "read back the objects already off-site too; re-upload any that are corrupted")
      .option("--part-size <MiB>", "multipart part size (one part in memory per job)", "8"),
  ).action(
    action(
      async (
        ctx,
        flags: S3Flags & {
          repo: string;
          prune?: boolean;
          dryRun?: boolean;
          verify?: boolean;
          partSize: string;
        },
      ) => {
        const target = await s3Target(ctx, flags);
        const partMiB = Number(flags.partSize);
        if (!Number.isInteger(partMiB) || partMiB < 5)
          throw new UsageError(
            `--part-size must be a whole number of MiB >= 5 (S3's minimum), got ${flags.partSize}`,
          );
        const lib = await backup();
        const r = await lib.pushOffsite({
          repository: flags.repo,
          target,
          prune: Boolean(flags.prune),
          dryRun: Boolean(flags.dryRun),
          verifyExisting: Boolean(flags.verify),
          partBytes: partMiB * 1024 * 1024,
          jobs: jobs(ctx),
          onProgress: ctx.progress.onProgress,
          signal: ctx.signal,
        });
        ctx.progress.stop();
        const would = r.dryRun ? "would be " : "";
        ctx.out.result(r, () =>
          [
            `${r.ok ? "off-site copy" : "off-site copy FAILED"}: ${r.target}: ${r.uploaded.length} file(s) ${would}uploaded (${mib(r.uploaded.reduce((n, u) => n + u.sizeBytes, 0))}), ${r.skipped.length} already there, ${r.pruned.length} ${would}pruned, ${r.failures.length} failed in ${(r.durationMs / 1000).toFixed(1)} s`,
            ...(r.dryRun || r.uploaded.length === 0
              ? []
              : [`  every upload read back: ${mib(r.bytesVerified)} hashed, sha256 as sent`]),
            ...r.uploaded.map(
              (u) =>
                `  ${r.dryRun ? "would upload" : "uploaded"} ${u.path} (${u.reason}, ${mib(u.sizeBytes)}${u.parts > 1 ? `, ${u.parts} parts` : ""})`,
            ),
            ...r.pruned.map((p) => `  ${r.dryRun ? "would prune" : "pruned"} ${p}`),
            ...(r.extraOffsite.length
              ? [
                  `  ${r.extraOffsite.length} object(s) off-site that the repository no longer holds (kept; --prune deletes them)`,
                ]
              : []),
            ...failureLines(r.failures, r.notRun),
          ].join("\n"),
        );
        return exitFor(r.failures, r.interrupted);
      },
    ),
  );

  s3Options(
    offsite
      .command("pull")
      .description(
        "download an off-site copy into a new repository directory (sha256 checked) for `backup restore`",
      )
      .requiredOption("--repo <dir>", "the new local repository directory"),
  ).action(
    action(async (ctx, flags: S3Flags & { repo: string }) => {
      const target = await s3Target(ctx, flags);
      const lib = await backup();
      const r = await lib.pullOffsite({
        repository: flags.repo,
        target,
        jobs: jobs(ctx),
        onProgress: ctx.progress.onProgress,
        signal: ctx.signal,
      });
      ctx.progress.stop();
      ctx.out.result(r, () =>
        [
          `${r.ok ? "pulled" : "pull FAILED"}: ${r.target} -> ${r.repository}: ${r.downloaded.length} file(s) downloaded (${mib(r.bytesDownloaded)}), ${r.skipped.length} already there, ${r.failures.length} failed in ${(r.durationMs / 1000).toFixed(1)} s`,
          ...(r.backupsChecked.length
            ? [`  backups checked against manifest.json: ${r.backupsChecked.join(", ")}`]
            : []),
          ...failureLines(r.failures, r.notRun),
        ].join("\n"),
      );
      return exitFor(r.failures, r.interrupted);
    }),
  );

  s3Options(
    offsite
      .command("list")
      .description("what is off-site: objects with their recorded sha256, the backups its manifest lists")
      .option("--verify", "read every object back and compare its sha256 (exit 3 on a mismatch)"),
  ).action(
    action(async (ctx, flags: S3Flags & { verify?: boolean }) => {
      const target = await s3Target(ctx, flags);
      const lib = await backup();
      const r = await lib.listOffsite({
        target,
        verify: Boolean(flags.verify),
        jobs: jobs(ctx),
        onProgress: ctx.progress.onProgress,
      });
      ctx.progress.stop();
      ctx.out.result(r, () => {
        const backups = r.backups.length
          ? renderTable(
              ["label", "kind", "started", "file", r.verified ? "intact" : "present"],
              r.backups.map((b) => [
                b.label,
                b.kind,
                b.startedAt,
                b.file,
                r.verified ? (b.intact ? "yes" : "NO") : b.present ? "yes" : "NO",
              ]),
            )
          : "no manifest.json off-site";
        return [
          `${r.target}: ${r.objects.length} object(s), ${mib(r.totalBytes)}${r.verified ? `; verified: ${r.ok ? "every object has its recorded sha256" : `${r.failures.length} problem(s)`}` : ""}`,
          backups,
          ...r.failures.map((f) => `  FAIL ${f.path}: ${f.message}`),
        ].join("\n");
      });
      return exitFor(r.failures, false);
    }),
  );
}
