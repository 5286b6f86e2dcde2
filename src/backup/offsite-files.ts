import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";

/** One regular file of a repository, by its path relative to the repository ("/"-separated). */
export interface RepositoryFile {
  path: string;
  sizeBytes: number;
}

/**
 * Files that say what the rest of a repository holds: pgshift's manifest and last drill, pgBackRest's
 * backup.info and archive.info (and their .copy twins). They are copied after everything else and only
 * when everything else arrived, so an off-site (or pulled) copy never lists a backup it does not hold.
 */
const INDEX_FILES = new Set([
  "manifest.json",
  "last-drill.json",
  "backup.info",
  "backup.info.copy",
  "archive.info",
  "archive.info.copy",
]);

/** What the local side of an off-site copy records about itself: never copied. */
export const LAST_OFFSITE_FILE = "last-offsite.json";
export const PULL_MARKER_FILE = "offsite-pull.json";

export function isIndexFile(path: string): boolean {
  return INDEX_FILES.has(posix.basename(path));
}

/**
 * Whether a path is part of the repository's content. Left out: files being written (`*.tmp`,
 * `*.partial`), pgBackRest's `lock/` and `log/` directories (run state, not backups) and pgshift's own
 * record of copies.
 */
export function isRepositoryContent(path: string): boolean {
  if (path.endsWith(".tmp") || path.endsWith(".partial")) return false;
  const top = path.split("/")[0];
  if (top === "lock" || top === "log") return false;
  return path !== LAST_OFFSITE_FILE && path !== PULL_MARKER_FILE;
}

/**
 * Every regular file of the repository that is content, data files first and index files last (each
 * group sorted by path). Symbolic links (pgBackRest's `latest`) are not content: pgBackRest finds its
 * backups through backup.info.
 */
export function listRepositoryFiles(repository: string): RepositoryFile[] {
  const files: RepositoryFile[] = [];
  const walk = (dir: string, relative: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (isRepositoryContent(`${path}/x`)) walk(join(dir, entry.name), path);
      } else if (entry.isFile() && isRepositoryContent(path)) {
        files.push({ path, sizeBytes: lstatSync(join(dir, entry.name)).size });
      }
    }
  };
  if (existsSync(repository)) walk(repository, "");
  return orderForCopy(files);
}

/** Data files first, index files last, so the index is written only over data already in place. */
export function orderForCopy<T extends { path: string }>(files: T[]): T[] {
  const byPath = (a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return [
    ...files.filter((f) => !isIndexFile(f.path)).sort(byPath),
    ...files.filter((f) => isIndexFile(f.path)).sort(byPath),
  ];
}

/** Whether a repository looks like one (so that pruning off-site against it is not a mistake). */
export function looksLikeRepository(files: readonly RepositoryFile[]): boolean {
  return files.some((f) => f.path === "manifest.json" || /^backup\/[^/]+\/backup\.info$/.test(f.path));
}

/** The newest successful push of a repository, as `last-offsite.json` keeps it (for metrics and list). */
export interface LastOffsite {
  finishedAt: string;
  target: string;
  uploaded: number;
  skipped: number;
  pruned: number;
  bytesUploaded: number;
  durationMs: number;
}

export function readLastOffsite(repository: string): LastOffsite | null {
  const path = join(repository, LAST_OFFSITE_FILE);
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as LastOffsite) : null;
}
