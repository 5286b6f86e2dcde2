import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chooseRunAs, giveTo } from "../local/run-as.ts";
import { BackupError } from "./backup-error.ts";
import {
  type PgBackRestBackup,
  type PgBackRestOptions,
  pgBackRestInfo,
  pgBackRestLayout,
  runPgBackRest,
} from "./pgbackrest.ts";
import { recoveryTimeText } from "./recovery-target.ts";
import { archiveEnds, clampToBackup, WINDOW_SCAN_SEGMENTS } from "./recovery-window.ts";
import type { RestorableBackup, RestoreSource } from "./restore-source.ts";
import { previousSegment, segmentNumber } from "./wal-prune.ts";

/**
 * A pgBackRest repository as a restore source: backups and the archive's range from `info --output=json`,
 * integrity from `verify`, the restore itself by `pgbackrest restore` with `--archive-mode=off` (a
 * restored cluster keeps production's archive_command; promoted with archiving on, it would push its WAL
 * into the production repository).
 */
export function pgBackRestSource(options: PgBackRestOptions & { binDir?: string }): RestoreSource {
  const repository = resolve(options.repository);
  const runAs = chooseRunAs(options.instance.env);
  let info: Awaited<ReturnType<typeof pgBackRestInfo>> | undefined;
  const readInfo = async () => (info ??= await pgBackRestInfo(options));
  const backupOf = async (label: string): Promise<PgBackRestBackup> => {
    const found = (await readInfo()).backups.find((b) => b.label === label);
    if (!found) throw new BackupError("not_found", `no pgBackRest backup ${label} in ${repository}`);
    return found;
  };
  return {
    engine: "pgbackrest",
    repository,
    async backups() {
      return (await readInfo()).backups.map((b): RestorableBackup => ({
        engine: "pgbackrest",
        label: b.label,
        startedAt: b.startedAt,
        finishedAt: b.finishedAt,
        // info records whole seconds (rounded down): the backup may have ended up to 1 s later
        endTime: new Date(Date.parse(b.finishedAt) + 1000).toISOString(),
        startLsn: b.startLsn,
        endLsn: b.stopLsn,
        sizeBytes: b.sizeBytes,
        type: b.type,
        ...(b.prior ? { prior: b.prior } : {}),
      }));
    },

    async window(backup) {
      const b = await backupOf(backup.label);
      const archive = (await readInfo()).archives.find(
        (a) => b.databaseId === undefined || a.databaseId === b.databaseId,
      );
      const base = {
        label: backup.label,
        engine: "pgbackrest" as const,
        earliest: backup.endTime,
        earliestLsn: backup.endLsn,
        archivedSegments: 0,
        lastSegment: archive?.max,
      };
      if (!archive?.max) return { ...base, latest: undefined, latestLsn: undefined };
      const l = await pgBackRestLayout(options);
      const dir = mkdtempSync(join(tmpdir(), "pgshift-archive-get-"));
      giveTo(runAs, dir);
      try {
        const fetch = async (segment: string): Promise<string | undefined> => {
          const file = join(dir, segment);
          try {
            await runPgBackRest(options, l, ["archive-get", segment, file]);
          } catch {
            return undefined; // not in the archive: the scan stops at the gap
          }
          return existsSync(file) ? file : undefined;
        };
        // The newest segment gives the segment size the older names are computed with.
        const newest = await fetch(archive.max);
        const segmentBytes = newest ? statSync(newest).size : 16 * 1024 * 1024;
        const first = b.archiveStart ? segmentNumber(b.archiveStart, segmentBytes) : null;
        const names = [archive.max];
        while (names.length < WINDOW_SCAN_SEGMENTS) {
          const prev = previousSegment(names[names.length - 1]!, segmentBytes);
          if (!prev || (first !== null && segmentNumber(prev, segmentBytes)! < first)) break;
          names.push(prev);
        }
        const ends = await archiveEnds(
          names,
          (segment) => (segment === archive.max ? Promise.resolve(newest) : fetch(segment)),
          options.binDir,
        );
        const min = archive.min ? segmentNumber(archive.min, segmentBytes) : null;
        return {
          ...base,
          ...clampToBackup(ends, backup.endTime, backup.endLsn),
          archivedSegments: min === null ? 0 : segmentNumber(archive.max, segmentBytes)! - min + 1,
        };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },

    async checkIntegrity(backup) {
      const l = await pgBackRestLayout(options);
      // verify exits 0 even when it finds damage (2.45): its text report (printed whole with --verbose)
      // says what, and the info log names each bad file.
      const out = await runPgBackRest(options, l, ["verify", "--output=text", "--verbose"], {
        consoleLevel: "info",
      });
      const lines = out.split("\n");
      const from = lines.findIndex((line) => /^stanza: /.test(line));
      const report = from < 0 ? [] : lines.slice(from).filter((line) => /^(stanza|status|\s+\S)/.test(line));
      const status = report.map((line) => /^status: (\S+)/.exec(line)?.[1]).find((s) => s !== undefined);
      const entries = report
        .filter((line) => /^ {2}(archiveId|backup): /.test(line))
        .map((line) => line.trim());
      if (status === "ok") return `pgbackrest verify: ${entries.join("; ")}`;
      const findings = lines
        .map((line) => /\bINFO: (.*'[^']+'.*)$/.exec(line)?.[1])
        .filter((f): f is string => f !== undefined && !/command (begin|end)/.test(f));
      const damaged = report
        .filter((line) => /status: invalid|(missing|checksum invalid|size invalid|other): [1-9]/.test(line))
        .map((line) => line.trim());
      throw new BackupError(
        "integrity",
        `pgbackrest verify found the repository damaged (drilling ${backup.label}): ${[...damaged, ...findings].join("; ") || `status ${status ?? "unknown"}`}`,
        { details: { label: backup.label, findings } },
      );
    },

    async restoreInto(backup, dataDir, target) {
      const l = await pgBackRestLayout(options);
      const args = ["restore", `--pg1-path=${dataDir}`, `--set=${backup.label}`, "--archive-mode=off"];
      if (target.kind === "latest") args.push("--type=default");
      else
        args.push(
          `--type=${target.kind}`,
          `--target=${target.kind === "time" ? recoveryTimeText(target.time) : target.lsn}`,
          "--target-action=promote",
        );
      args.push("--target-timeline=current");
      await runPgBackRest(options, l, args);
    },

    timelineHistories() {
      const stanzaDir = join(repository, "archive", options.stanza ?? "main");
      if (!existsSync(stanzaDir)) return [];
      return readdirSync(stanzaDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .flatMap((d) =>
          readdirSync(join(stanzaDir, d.name))
            .filter((f) => /^[0-9A-F]{8}\.history(\.[a-z0-9]+)?$/.test(f))
            .map((f) => `${d.name}/${f}`),
        );
    },
  };
}
