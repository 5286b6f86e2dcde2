import { ExitCode, PgshiftError } from "../errors.ts";

/**
 * A key is missing, unreadable or malformed, or a value was written under a key id the keyring does not
 * hold. Messages name the key id and where the keys came from, never key material.
 */
export class EncryptionKeyError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("encryption_key", message, { exitCode: ExitCode.usage, details });
  }
}

/** A ciphertext does not authenticate under its key: it was changed, or the key with its id differs. */
export class DecryptionError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("decryption_failed", message, { exitCode: ExitCode.failure, details });
  }
}

/**
 * A DocumentStore without a keyring was used on a table whose fields are encrypted: it would hand out
 * ciphertext as if it were the data.
 */
export class EncryptedTableError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("encrypted_table", message, { exitCode: ExitCode.usage, details });
  }
}

/** `keys rotate` found rows whose MAC or ciphertext does not check: left as they are, and named. */
export class RotationRefusedError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("rotation_refused", message, { exitCode: ExitCode.mismatch, details });
  }
}
