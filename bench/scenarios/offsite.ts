import { randomBytes } from "node:crypto";
import { createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startS3Server } from "../../test/helpers/s3-server.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { type MeasuredRun, round } from "../lib/measure.ts";
import { addSecret, failureText, parseJsonResult, pgshiftHelp, runPgshift } from "../lib/pgshift.ts";
import { emptyScenario, ratio } from "../lib/result.ts";

const MIB = 1024 * 1024;
const SECRET_ENV = "PGSHIFT_BENCH_S3_SECRET";

/** A repository shaped like a real one: one base backup (random bytes: compressed data does not shrink) and WAL segments. */
function writeRepository(dir: string, baseMib: number, walSegments: number): string[] {
  mkdirSync(join(dir, "base", "b1"), { recursive: true });
  mkdirSync(join(dir, "wal"), { recursive: true });
  const files: string[] = [];
  const block = randomBytes(MIB);
  const base = join(dir, "base", "b1", "base.tar");
  writeFileSync(base, "");
  for (let i = 0; i < baseMib; i++) {
    const chunk = Buffer.from(block);
    chunk.writeUInt32BE(i, 0);
    writeFileSync(base, chunk, { flag: "a" });
  }
  files.push("base/b1/base.tar");
  for (let i = 0; i < walSegments; i++) {
    const name = `wal/${(0x100000000 + i).toString(16).toUpperCase().padStart(24, "0")}`;
    writeFileSync(join(dir, name), randomBytes(MIB));
    files.push(name);
  }
  writeFileSync(join(dir, "manifest.json"), '{"format":1,"backups":[]}\n');
  files.push("manifest.json");
  return files;
}

/**
 * Off-site copy (issue 17): `pgshift backup offsite push` of a repository to s3rver on loopback (every
 * upload read back and hashed), side by side with a bare concurrent PutObject of the same files (no
 * hashing, no read-back: the transfer's ceiling), then the second push (nothing to upload) and a pull.
 */
export function offsiteScenario(options: { baseMib: number; walSegments: number }): Scenario {
  return async (ctx: BenchContext) => {
    const totalMib = options.baseMib + options.walSegments;
    const result = emptyScenario(
      "offsite",
      `Backup repository (${options.baseMib} MiB base backup + ${options.walSegments} x 1 MiB WAL) -> s3rver on 127.0.0.1: pgshift backup offsite push vs bare PutObject; second push; pull.`,
    );
    const help = (await pgshiftHelp(ctx.repoRoot, ["backup", "offsite", "push"])) ?? "";
    if (!help.includes("--s3")) {
      result.status = "not available";
      result.notes.push("this build has no `pgshift backup offsite`");
      return result;
    }
    const repo = join(ctx.workDir, "offsite-repo");
    rmSync(repo, { recursive: true, force: true });
    const files = writeRepository(repo, options.baseMib, options.walSegments);
    result.params = { repository_mib: totalMib, files: files.length, jobs: 4, part_mib: 8 };
    const s3 = await startS3Server();
    addSecret(s3.secret);
    try {
      const flags = (prefix: string) => [
        "--s3",
        `s3://${s3.bucket}/${prefix}`,
        "--s3-endpoint",
        s3.endpoint,
        "--s3-access-key-id",
        s3.accessKeyId,
        "--s3-secret-env",
        SECRET_ENV,
        "--json",
      ];
      const env = { [SECRET_ENV]: s3.secret };
      const cli = (args: string[]) => runPgshift(ctx.repoRoot, args, { env, timeoutMs: 30 * 60_000 });

      ctx.log("offsite: bare PutObject of the repository");
      const client = new S3Client({
        region: "us-east-1",
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secret },
        requestChecksumCalculation: "WHEN_REQUIRED",
      });
      const bareStarted = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < files.length) {
            const file = files[next++]!;
            await client.send(
              new PutObjectCommand({
                Bucket: s3.bucket,
                Key: `bare/${file}`,
                Body: createReadStream(join(repo, file)),
                ContentLength: statSync(join(repo, file)).size,
              }),
            );
          }
        }),
      );
      const bareMs = performance.now() - bareStarted;
      client.destroy();

      ctx.log("offsite: pgshift backup offsite push (first, then again)");
      const push = await cli(["backup", "offsite", "push", "--repo", repo, ...flags("pgshift")]);
      const again = await cli(["backup", "offsite", "push", "--repo", repo, ...flags("pgshift")]);
      ctx.log("offsite: pgshift backup offsite pull");
      const pulled = join(ctx.workDir, "offsite-pulled");
      rmSync(pulled, { recursive: true, force: true });
      const pull = await cli(["backup", "offsite", "pull", "--repo", pulled, ...flags("pgshift")]);
      rmSync(pulled, { recursive: true, force: true });

      const describe = (
        run: MeasuredRun,
        extra: (json: Record<string, unknown>) => Record<string, unknown>,
      ) => {
        const json = parseJsonResult(run.stdout);
        const ok = run.exitCode === 0 && json?.ok === true;
        return {
          ok,
          wall_s: round(run.wallMs / 1000, 2),
          mib_per_s: round(totalMib / (run.wallMs / 1000), 1),
          peak_rss_mb: run.peakTreeRssMb,
          exit_code: run.exitCode,
          ...(json ? extra(json) : {}),
          ...(ok ? {} : { error: failureText(run) }),
        };
      };
      const count = (json: Record<string, unknown>, key: string) =>
        Array.isArray(json[key]) ? (json[key] as unknown[]).length : null;
      const measurements = {
        bare_put: {
          ok: true,
          wall_s: round(bareMs / 1000, 2),
          mib_per_s: round(totalMib / (bareMs / 1000), 1),
        },
        pgshift_push: describe(push, (j) => ({
          uploaded: count(j, "uploaded"),
          bytes_verified: j.bytesVerified,
        })),
        pgshift_push_again: describe(again, (j) => ({
          uploaded: count(j, "uploaded"),
          skipped: count(j, "skipped"),
        })),
        pgshift_pull: describe(pull, (j) => ({ downloaded: count(j, "downloaded") })),
      };
      result.measurements = measurements;
      const allOk =
        measurements.pgshift_push.ok &&
        measurements.pgshift_push_again.ok &&
        measurements.pgshift_pull.ok &&
        (measurements.pgshift_push_again as Record<string, unknown>).uploaded === 0;
      result.ratios.offsite_push_vs_bare_put_wall = ratio(
        "pgshift offsite push wall (hash, upload, read back, CLI start) / bare concurrent PutObject wall (in-process)",
        measurements.pgshift_push.ok ? push.wallMs / bareMs : null,
        null,
        "no target in issue 17; the read-back is a second transfer by design",
      );
      result.ratios.offsite_second_push_vs_first_wall = ratio(
        "second push (nothing to upload) wall / first push wall",
        allOk ? again.wallMs / push.wallMs : null,
        null,
      );
      const row = (name: string, m: Record<string, unknown>) => [
        name,
        typeof m.wall_s === "number" ? m.wall_s : "n/a",
        typeof m.mib_per_s === "number" ? m.mib_per_s : "n/a",
        typeof m.peak_rss_mb === "number" ? m.peak_rss_mb : "n/a",
        m.ok ? "ok" : String(m.error ?? "failed").slice(0, 120),
      ];
      result.tables.push({
        title: `${totalMib} MiB repository, ${files.length} files, to s3rver on loopback`,
        headers: ["contender", "wall s", "MiB/s", "peak RSS MB", "status"],
        rows: [
          row("bare PutObject x4 (in-process, no hash, no read-back)", measurements.bare_put),
          row("pgshift backup offsite push", measurements.pgshift_push),
          row("pgshift backup offsite push (again: nothing to upload)", measurements.pgshift_push_again),
          row("pgshift backup offsite pull (sha256 checked)", measurements.pgshift_pull),
        ],
      });
      result.notes.push(
        "s3rver stores objects on the same disk, so both sides share it; the bare contender runs inside the bench process (no CLI start-up).",
      );
      result.status = allOk ? "ok" : "failed";
    } finally {
      await s3.stop();
      rmSync(repo, { recursive: true, force: true });
    }
    return result;
  };
}
