import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";

/** A random password of 32 URL-safe characters (192 bits): no quoting needed anywhere it goes. */
export function generatePassword(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, the format of
 * pg_authid.rolpassword). Sending the verifier instead of the password keeps the password out of the
 * server's logs and pg_stat_statements. Generated passwords are ASCII, so SASLprep leaves them as they are.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

export interface PgpassEntry {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

function escapeField(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
}

/**
 * Writes entries in libpq's .pgpass format (`host:port:database:user:password`, usable as PGPASSFILE),
 * mode 0600. Lines of other users already in the file are kept; a user's line is replaced.
 */
export function writePgpass(file: string, entries: readonly PgpassEntry[]): void {
  const users = new Set(
    entries.map((e) => `${e.host}:${e.port}:${escapeField(e.database)}:${escapeField(e.user)}:`),
  );
  const kept = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line && ![...users].some((prefix) => line.startsWith(prefix)))
    : [];
  const lines = entries.map(
    (e) => `${e.host}:${e.port}:${escapeField(e.database)}:${escapeField(e.user)}:${escapeField(e.password)}`,
  );
  writeFileSync(file, `${[...kept, ...lines].join("\n")}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The password of `user` in a .pgpass file, if it has one. */
export function readPgpassPassword(file: string, user: string): string | undefined {
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const fields = line.split(/(?<!\\):/);
    if (fields.length === 5 && fields[3]!.replace(/\\(.)/g, "$1") === user)
      return fields[4]!.replace(/\\(.)/g, "$1");
  }
  return undefined;
}
