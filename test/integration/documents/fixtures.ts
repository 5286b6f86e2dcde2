import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A fresh temporary directory for one test's input files. */
export async function tempDir(prefix = "pgshift-docs-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes `files` (relative path -> content) under a new temporary directory and returns it. */
export async function writeTree(files: Record<string, string | Buffer>): Promise<string> {
  const root = await tempDir();
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
  }
  return root;
}

/** Writes one file in a new temporary directory and returns its path. */
export async function writeTemp(name: string, content: string | Buffer): Promise<string> {
  const root = await tempDir();
  const path = join(root, name);
  await writeFile(path, content);
  return path;
}

/** Peak RSS growth while `fn` runs, sampled every 25 ms. */
export async function peakGrowth<T>(fn: () => Promise<T>): Promise<{ value: T; growthMb: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 25);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, growthMb: Math.round((peak - base) / 1024 ** 2) };
  } finally {
    clearInterval(timer);
  }
}
