import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

/** Where the encryption passphrase comes from: never a literal on the command line. */
export type PassphraseSource = { file: string } | { env: string };

/** Reads the passphrase (first line of the file, or the variable); refuses an empty one. */
export function readPassphrase(source: PassphraseSource): Buffer {
  let value: string | undefined;
  if ("file" in source) {
    try {
      value = readFileSync(source.file, "utf8").split(/\r?\n/)[0];
    } catch (error) {
      throw new UsageError(`cannot read the passphrase file ${source.file}: ${(error as Error).message}`);
    }
  } else value = process.env[source.env];
  if (!value)
    throw new UsageError(
      "file" in source
        ? `the passphrase file ${source.file} is empty`
        : `the environment variable ${source.env} holding the passphrase is not set or empty`,
    );
  return Buffer.from(value, "utf8");
}

/** How a manifest records the source, without the secret. */
export function describePassphrase(source: PassphraseSource): string {
  return "file" in source ? `file ${source.file}` : `env ${source.env}`;
}
