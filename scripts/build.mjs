#!/usr/bin/env node
// Compiles src/ to dist/src/ (tsc: JavaScript with .ts imports rewritten to .js, and .d.ts declarations,
// whose relative .ts imports are rewritten to .js here so that any TypeScript version reads them) and
// writes dist/.build-stamp, which bin/pgshift.js compares with the sources' times to decide whether the
// compiled CLI is current.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
rmSync("dist", { recursive: true, force: true });
const started = Date.now();
const tsc = require.resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
if (result.status !== 0) {
  // A package without dist/ is broken: packing or publishing fails.
  const packing = ["pack", "publish"].includes(process.env.npm_command ?? "");
  console.error(
    packing
      ? "build failed: the package cannot be packed without dist/"
      : "build failed: the CLI will run from the TypeScript sources (slower start) until it is fixed",
  );
  // Under `prepare` (npm ci) a type error must not make the install fail: the CLI still runs from
  // source, and `npm run check` reports the error. An explicit `npm run build` fails.
  process.exit(process.argv.includes("--if-possible") && !packing ? 0 : (result.status ?? 1));
}

function declarationFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

// `from "./x.ts"`, `import("./x.ts")` and `export * from "../y/index.ts"` in declarations.
const relativeTsSpecifier = /(["'])(\.{1,2}\/[^"']*?)\.ts\1/g;
for (const file of declarationFiles("dist")) {
  const text = readFileSync(file, "utf8");
  const rewritten = text.replace(relativeTsSpecifier, (_, quote, path) => `${quote}${path}.js${quote}`);
  if (rewritten !== text) writeFileSync(file, rewritten);
}

mkdirSync("dist", { recursive: true });
writeFileSync("dist/.build-stamp", `${new Date(started).toISOString()}\n`);
