import { Option } from "commander";
import { UsageError } from "../errors.ts";
import { hmacKeyFromEnv, type SigningKey, signingKeyFromFile } from "../verify/report.ts";

/** The environment variable reports are signed (and checked) with by default: verify's and refresh's. */
export const DEFAULT_KEY_ENV = "PGSHIFT_REPORT_KEY";

export interface SigningFlags {
  signKey?: string;
  hmacKeyEnv?: string;
}

/**
 * `--sign-key FILE` and `--hmac-key-env VAR`, as every command that writes a signed report takes them:
 * `.addOption(signKeyOption()).addOption(hmacKeyEnvOption())`.
 */
export function signKeyOption(): Option {
  return new Option(
    "--sign-key <file>",
    "sign the report: a PEM Ed25519 private key, or a file holding an HMAC secret",
  );
}

export function hmacKeyEnvOption(): Option {
  return new Option(
    "--hmac-key-env <var>",
    `sign the report with HMAC-SHA256, key from this environment variable (default ${DEFAULT_KEY_ENV} when set)`,
  );
}

/** The key those flags name, else the default environment variable's, else none (the report is unsigned). */
export function signingKey(flags: SigningFlags): SigningKey | undefined {
  if (flags.signKey && flags.hmacKeyEnv)
    throw new UsageError("pass either --sign-key or --hmac-key-env, not both");
  if (flags.signKey) return signingKeyFromFile(flags.signKey);
  if (flags.hmacKeyEnv) return hmacKeyFromEnv(flags.hmacKeyEnv);
  if (process.env[DEFAULT_KEY_ENV]) return hmacKeyFromEnv(DEFAULT_KEY_ENV);
  return undefined;
}
