import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The root of the pgshift package: the nearest package.json named "pgshift" above this file (src/ or dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (
      existsSync(candidate) &&
      (JSON.parse(readFileSync(candidate, "utf8")) as { name?: string }).name === "pgshift"
    ) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find pgshift's package.json");
    dir = parent;
  }
}

export const PACKAGE_ROOT = packageRoot();

/** pgshift's version, as in package.json. */
export const PGSHIFT_VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }
).version;

/**
 * A sibling module's URL with the extension this code runs under: `.ts` from source (through tsx), `.js`
 * when compiled to dist/. For worker entry points and lazy imports built from a URL.
 */
export function siblingModule(base: string, relativePathWithoutExtension: string): URL {
  const extension = base.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`${relativePathWithoutExtension}${extension}`, base);
}

/** True when this code runs from TypeScript source (tsx), so worker threads need the tsx loader too. */
export function runningFromSource(base: string): boolean {
  return base.endsWith(".ts");
}
