import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../../../src", import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = join(dir, entry);
    return statSync(full).isDirectory() ? files(full) : full.endsWith(".ts") ? [full] : [];
  });
}

/** Advice to run a flag that drops tables or deletes rows ("use --mode replace"), not a warning about it. */
const ADVICE =
  /\b(?:use|pass|with|run|try|or|then)\s+(--if-exists replace|--mode replace|--mirror)\b(?! would)/i;

describe("no message advises a destructive flag", () => {
  it("every string in src/ names what --if-exists replace / --mode replace / --mirror would destroy instead", () => {
    const found: string[] = [];
    for (const file of files(SRC)) {
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (/^\s*(\/\/|\*|\/\*\*)/.test(line)) return;
          if (ADVICE.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(found, []);
  });

  it("the pattern catches the advice pgshift used to give", () => {
    assert.ok(ADVICE.test("pass --if-exists replace to drop and recreate them"));
    assert.ok(ADVICE.test("re-run with --mode upsert to update it, or --mode replace`"));
    assert.ok(!ADVICE.test("--if-exists replace would drop them and every row they hold"));
  });
});
