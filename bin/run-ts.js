#!/usr/bin/env node
// Runs a TypeScript entry point (bench, examples, scripts) with tsx's loader: `node bin/run-ts.js FILE [args]`.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { register } from "tsx/esm/api";

register();
const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  process.stderr.write("usage: node bin/run-ts.js FILE.ts [args]\n");
  process.exit(2);
}
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(resolve(entry)).href);
