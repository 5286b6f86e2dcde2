import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

const made: string[] = [];
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A temporary migrations directory holding `files` (name -> text); removed after the test file. */
export function migrationDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-migrations-"));
  made.push(dir);
  writeMigrations(dir, files);
  return dir;
}

export function writeMigrations(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

/** `-- migrate:up` / `-- migrate:down` text. */
export function migration(up: string, down?: string, options: { noTransaction?: boolean } = {}): string {
  return `${options.noTransaction ? "-- migrate:no-transaction\n" : ""}-- migrate:up\n${up}\n${down === undefined ? "" : `-- migrate:down\n${down}\n`}`;
}
