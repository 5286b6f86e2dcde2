import { opendir, readFile, stat } from "node:fs/promises";
import { basename, join, relative, sep } from "node:path";
import type { DocumentSource, SourceItem, SourceProgress } from "../../documents/source-record.ts";
import { parseJsonBytes, streamJsonFile, WHOLE_FILE_LIMIT } from "./json-file-source.ts";

/** Files read ahead while the current one is parsed (I/O overlaps parsing and COPY). */
const READ_AHEAD = 8;

/**
 * `json:DIR`: every `.json` file under DIR (recursively, in sorted order so re-runs are deterministic),
 * each one record, an array of records, or an envelope with records at `recordsPointer`.
 * The tree is walked lazily: only one directory's names and a few files' contents are held at a time.
 */
export function jsonDirSource(
  dir: string,
  options: { recordsPointer?: readonly string[]; label?: string } = {},
): DocumentSource {
  return {
    label: options.label ?? `json:${dir}`,
    defaultTable: basename(dir.replace(/[/\\]+$/, "")) || "documents",
    read: (progress) => readJsonDir(dir, options.recordsPointer, progress),
  };
}

/** Paths of the .json files under `dir`, depth-first, names sorted within each directory. */
export async function* walkJsonFiles(dir: string): AsyncGenerator<string> {
  const names: { name: string; directory: boolean }[] = [];
  for await (const entry of await opendir(dir)) {
    if (entry.name.startsWith(".")) continue;
    if (entry.isDirectory()) names.push({ name: entry.name, directory: true });
    else if ((entry.isFile() || entry.isSymbolicLink()) && entry.name.toLowerCase().endsWith(".json"))
      names.push({ name: entry.name, directory: false });
  }
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of names) {
    const path = join(dir, entry.name);
    if (entry.directory) yield* walkJsonFiles(path);
    else yield path;
  }
}

interface LoadedFile {
  path: string;
  size: number;
  bytes?: Buffer;
}

async function load(path: string): Promise<LoadedFile> {
  const size = (await stat(path)).size;
  if (size > WHOLE_FILE_LIMIT) return { path, size };
  return { path, size, bytes: await readFile(path) };
}

async function* readJsonDir(
  dir: string,
  recordsPointer: readonly string[] | undefined,
  progress?: (p: SourceProgress) => void,
): AsyncGenerator<SourceItem> {
  // a first walk counts the files (names only, nothing kept) so that progress can show an ETA
  let totalFiles = 0;
  if (progress) for await (const _path of walkJsonFiles(dir)) totalFiles++;
  const paths = walkJsonFiles(dir);
  const ahead: Promise<LoadedFile>[] = [];
  let exhausted = false;
  const fill = async () => {
    while (!exhausted && ahead.length < READ_AHEAD) {
      const next = await paths.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const loading = load(next.value);
      loading.catch(() => undefined);
      ahead.push(loading);
    }
  };
  let files = 0;
  let bytes = 0;
  await fill();
  while (ahead.length > 0) {
    const loaded = await ahead.shift()!;
    await fill();
    const file = relative(dir, loaded.path).split(sep).join("/");
    if (loaded.bytes) yield* parseJsonBytes(loaded.bytes, file, recordsPointer);
    else yield* streamJsonFile(loaded.path, file, loaded.size, recordsPointer);
    files++;
    bytes += loaded.size;
    progress?.({ files, bytes, totalFiles });
  }
}
