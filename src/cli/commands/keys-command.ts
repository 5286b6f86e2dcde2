import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { addKeyToJson, type Keyring, loadKeyring, nextKeyId } from "../../crypto/keyring.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { action } from "../action.ts";

/** The keyring used when no --keys is given but this variable is set. */
export const DEFAULT_KEYS_ENV = "PGSHIFT_KEYS";

/** The keyring `--keys FILE|env:VAR` names (default env:PGSHIFT_KEYS when set); undefined when neither. */
export function keyringFromFlag(flag: unknown, required = false): Keyring | undefined {
  if (typeof flag === "string" && flag !== "") return loadKeyring(flag);
  if (process.env[DEFAULT_KEYS_ENV]) return loadKeyring(`env:${DEFAULT_KEYS_ENV}`);
  if (required)
    throw new UsageError(`no keys: pass --keys FILE or --keys env:VAR, or set ${DEFAULT_KEYS_ENV}`);
  return undefined;
}

interface RotateFlags {
  table?: string;
  keys?: string;
  batchSize?: string;
}

export function registerKeysCommands(program: Command): void {
  const keys = program
    .command("keys")
    .description("keys of encrypted fields and record MACs: make them, rotate tables to a new one");

  keys
    .command("new")
    .description(
      "add a fresh random key (encryption, blind index and MAC keys) to a key file and make it the active one; creates the file (mode 600) if absent",
    )
    .argument("<file>", "the key file")
    .option("--id <id>", "the new key's id (default k1, k2, ...)")
    .action(
      action(async (ctx, file: string, flags: { id?: string }) => {
        const existing = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
          if (error.code === "ENOENT") return undefined;
          throw new UsageError(`cannot read key file ${file}: ${error.code ?? error.message}`);
        });
        const id = flags.id ?? nextKeyId(existing);
        const text = addKeyToJson(existing, id, `key file ${file}`);
        // written aside and renamed: a crash never leaves a half-written key file
        const temporary = `${file}.${process.pid}.tmp`;
        await writeFile(temporary, text, { mode: 0o600 });
        await chmod(temporary, 0o600);
        await rename(temporary, file);
        ctx.out.result({ file, active: id, created: existing === undefined }, () =>
          existing === undefined
            ? `created ${file} with key "${id}" (active); keep it secret and backed up: without it the encrypted values cannot be read`
            : `added key "${id}" to ${file} and made it active; run "pgshift keys rotate --table T --keys ${file}" to move rows to it`,
        );
        return ExitCode.ok;
      }),
    );

  keys
    .command("rotate")
    .description(
      "re-encrypt a table's encrypted fields and record MACs under the key file's active key, in batches; resumable (rows already under it are skipped)",
    )
    .requiredOption("--table <name>", "the document table")
    .option(
      "--keys <file|env:VAR>",
      `the keys: old ones and the active new one (default env:${DEFAULT_KEYS_ENV})`,
    )
    .option("--batch-size <n>", "rows per transaction (default 1000)")
    .action(
      action(async (ctx, flags: RotateFlags) => {
        const keyring = keyringFromFlag(flags.keys, true)!;
        let batchSize: number | undefined;
        if (flags.batchSize !== undefined) {
          batchSize = Number(flags.batchSize);
          if (!Number.isInteger(batchSize) || batchSize < 1)
            throw new UsageError(`--batch-size must be a whole number above 0, not "${flags.batchSize}"`);
        }
        const pool = await ctx.pool({ max: 2 });
        const { rotateKeys } = await import("../../crypto/rotate-keys.ts");
        const result = await rotateKeys({
          pool,
          schema: ctx.settings.schema,
          table: flags.table!,
          keyring,
          ...(batchSize !== undefined ? { batchSize } : {}),
          onProgress: ctx.progress.onProgress,
          signal: ctx.signal,
        });
        ctx.progress.stop();
        ctx.out.result(
          result,
          () =>
            `rotated ${result.rowsRotated} row(s) of ${result.schema}.${result.table} to key "${result.toKeyId}" in ${result.batches} batch(es), ${(result.durationMs / 1000).toFixed(1)} s`,
        );
        return ExitCode.ok;
      }),
    );
}
