#!/usr/bin/env node
// The CLI entry. An installed package has no src/ and runs the compiled code in dist/. A development
// checkout runs dist/ (built by `npm run build`, which `npm ci` runs through `prepare`) when it is at
// least as new as every source file; otherwise it runs the TypeScript sources through tsx's loader (a
// devDependency), so a checkout whose dist/ is missing or stale still runs exactly the code in src/.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "dist", ".build-stamp");
const compiledMain = join(root, "dist", "src", "cli", "main.js");
const developmentCheckout = existsSync(join(root, "src", "cli", "main.ts"));

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function fail(message) {
  process.stderr.write(`pgshift: ${message}\n`);
  process.exit(1);
}

let main;
if (!developmentCheckout) {
  if (!existsSync(compiledMain)) fail(`the compiled CLI ${compiledMain} is missing: reinstall pgshift`);
  ({ main } = await import("../dist/src/cli/main.js"));
} else if (
  process.env.PGSHIFT_FROM_SOURCE !== "1" &&
  existsSync(stamp) &&
  statSync(stamp).mtimeMs >= newestSource(join(root, "src")) &&
  statSync(stamp).mtimeMs >= statSync(join(root, "package.json")).mtimeMs
) {
  ({ main } = await import("../dist/src/cli/main.js"));
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
    fail(
      "dist/ is missing or older than src/, and tsx (a devDependency) is not installed to run the sources: " +
        "run `npm run build`, or `npm install` for the development dependencies",
    );
  }
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv);
