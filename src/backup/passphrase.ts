import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

/** Where the encryption passphrase comes from: never a literal on the command line. */
export type PassphraseSource = { file: string } | { env: string };

/** Where any secret (a passphrase, an S3 secret access key) comes from: a file or the environment. */
export type SecretSource = PassphraseSource;

/**
 * Reads a secret (first line of the file, or the variable); refuses an empty one. `what` names it in
 * errors ("the passphrase", "the S3 secret access key"); the value itself never appears in one.
 */
export function readSecret(source: SecretSource, what: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  let value: string | undefined;
  if ("file" in source) {
    try {
      value = readFileSync(source.file, "utf8").split(/\r?\n/)[0];
    } catch (error) {
      throw new UsageError(`cannot read the ${what} file ${source.file}: ${(error as Error).message}`);
    }
  } else value = env[source.env];
  if (!value)
    throw new UsageError(
      "file" in source
        ? `the ${what} file ${source.file} is empty`
        : `the environment variable ${source.env} holding the ${what} is not set or empty`,
    );
  return Buffer.from(value, "utf8");
}

/** Reads the passphrase (first line of the file, or the variable); refuses an empty one. */
export function readPassphrase(source: PassphraseSource): Buffer {
  return readSecret(source, "passphrase");
}

/** How a manifest records the source, without the secret. */
export function describePassphrase(source: PassphraseSource): string {
  return "file" in source ? `file ${source.file}` : `env ${source.env}`;
}
