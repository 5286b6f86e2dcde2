#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`, which `npm ci` runs through `prepare`) when it is
// at least as new as every source file; otherwise runs the TypeScript sources through tsx's loader, so a
// checkout whose dist/ is missing or stale still runs exactly the code in src/.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "dist", ".build-stamp");

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const compiledIsFresh =
  process.env.PGSHIFT_FROM_SOURCE !== "1" &&
  existsSync(stamp) &&
  statSync(stamp).mtimeMs >= newestSource(join(root, "src")) &&
  statSync(stamp).mtimeMs >= statSync(join(root, "package.json")).mtimeMs;

let main;
if (compiledIsFresh) {
  ({ main } = await import("../dist/src/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv);
