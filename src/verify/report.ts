import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as signData,
  timingSafeEqual,
  verify as verifyData,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { PgshiftError, UsageError } from "../errors.ts";

/**
 * Verification reports as change-control evidence: a JSON document, optionally signed with
 * HMAC-SHA256 (a shared secret) or Ed25519 (a PEM private key; anyone with the public key can check).
 * The signature covers the report's canonical JSON (keys sorted, no white space) without `signature`.
 */
export interface ReportSignature {
  algorithm: "hmac-sha256" | "ed25519";
  /** Ed25519: sha256 of the public key (SPKI DER), hex, so a reader knows which key to check with. */
  publicKeySha256?: string;
  /** base64 of the signature over the canonical JSON. */
  value: string;
}

export type SigningKey =
  { algorithm: "hmac-sha256"; secret: Buffer } | { algorithm: "ed25519"; privateKey: KeyObject };

export type CheckingKey =
  { algorithm: "hmac-sha256"; secret: Buffer } | { algorithm: "ed25519"; publicKey: KeyObject };

export class ReportKeyError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("report_key", message, { details });
  }
}

/** JSON with object keys sorted at every level and no white space: the bytes that get signed. */
export function canonicalReportJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "bigint") return JSON.stringify(value.toString());
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? "null" : canonicalReportJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalReportJson(v)}`).join(",")}}`;
}

function signedBytes(report: Record<string, unknown>): Buffer {
  const { signature: _signature, ...rest } = report;
  return Buffer.from(canonicalReportJson(rest), "utf8");
}

function publicKeyFingerprint(key: KeyObject): string {
  return createHash("sha256")
    .update(key.export({ type: "spki", format: "der" }))
    .digest("hex");
}

/** Returns the report with a `signature` member added. */
export function signReport<T extends object>(report: T, key: SigningKey): T & { signature: ReportSignature } {
  const bytes = signedBytes(report as Record<string, unknown>);
  if (key.algorithm === "hmac-sha256") {
    const value = createHmac("sha256", key.secret).update(bytes).digest("base64");
    return { ...report, signature: { algorithm: "hmac-sha256", value } };
  }
  const value = signData(null, bytes, key.privateKey).toString("base64");
  const publicKey = createPublicKey(key.privateKey);
  return {
    ...report,
    signature: { algorithm: "ed25519", publicKeySha256: publicKeyFingerprint(publicKey), value },
  };
}

export interface SignatureCheck {
  valid: boolean;
  algorithm?: ReportSignature["algorithm"];
  /** Why it is not valid. */
  reason?: string;
}

/** Checks a parsed report's signature with the given key. */
export function checkReportSignature(report: Record<string, unknown>, key: CheckingKey): SignatureCheck {
  const signature = report.signature as ReportSignature | undefined;
  if (!signature || typeof signature !== "object" || typeof signature.value !== "string")
    return { valid: false, reason: "the report is not signed" };
  if (signature.algorithm !== key.algorithm)
    return {
      valid: false,
      algorithm: signature.algorithm,
      reason: `the report is signed with ${signature.algorithm}, but a ${key.algorithm} key was given`,
    };
  const bytes = signedBytes(report);
  const given = Buffer.from(signature.value, "base64");
  if (key.algorithm === "hmac-sha256") {
    const expected = createHmac("sha256", key.secret).update(bytes).digest();
    const valid = given.length === expected.length && timingSafeEqual(given, expected);
    return valid
      ? { valid, algorithm: key.algorithm }
      : {
          valid,
          algorithm: key.algorithm,
          reason: "signature does not match: the report was changed or the key differs",
        };
  }
  if (signature.publicKeySha256 && signature.publicKeySha256 !== publicKeyFingerprint(key.publicKey))
    return {
      valid: false,
      algorithm: key.algorithm,
      reason: "the report was signed with a different Ed25519 key",
    };
  let valid = false;
  try {
    valid = verifyData(null, bytes, key.publicKey, given);
  } catch {
    valid = false;
  }
  return valid
    ? { valid, algorithm: key.algorithm }
    : { valid, algorithm: key.algorithm, reason: "signature does not match: the report was changed" };
}

function readKeyFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ReportKeyError(`cannot read key file ${path}: ${(error as Error).message}`, { path });
  }
}

function isPem(bytes: Buffer): boolean {
  return bytes.toString("utf8", 0, Math.min(bytes.length, 200)).includes("-----BEGIN");
}

/** An HMAC secret from an environment variable (never printed). */
export function hmacKeyFromEnv(
  variable: string,
  env: NodeJS.ProcessEnv = process.env,
): SigningKey & CheckingKey {
  const value = env[variable];
  if (!value)
    throw new UsageError(`environment variable ${variable} is empty or not set; it must hold the HMAC key`);
  if (value.length < 16)
    throw new UsageError(`the HMAC key in ${variable} is shorter than 16 characters; use a longer secret`);
  return { algorithm: "hmac-sha256", secret: Buffer.from(value, "utf8") };
}

/**
 * A signing key from a file: a PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`), or any
 * other file whose bytes (trailing newline removed) are an HMAC secret.
 */
export function signingKeyFromFile(path: string): SigningKey {
  const bytes = readKeyFile(path);
  if (!isPem(bytes)) {
    const secret = Buffer.from(bytes.toString("utf8").replace(/\r?\n$/, ""), "utf8");
    if (secret.length < 16)
      throw new ReportKeyError(`the HMAC key in ${path} is shorter than 16 bytes`, { path });
    return { algorithm: "hmac-sha256", secret };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(bytes);
  } catch (error) {
    throw new ReportKeyError(`${path} is not a PEM private key: ${(error as Error).message}`, { path });
  }
  if (privateKey.asymmetricKeyType !== "ed25519")
    throw new ReportKeyError(
      `${path} holds a ${privateKey.asymmetricKeyType} key; pgshift signs reports with Ed25519`,
      {
        path,
      },
    );
  return { algorithm: "ed25519", privateKey };
}

/** A checking key from a file: a PEM Ed25519 public key (a private key also works), or an HMAC secret file. */
export function checkingKeyFromFile(path: string): CheckingKey {
  const bytes = readKeyFile(path);
  if (!isPem(bytes)) {
    const key = signingKeyFromFile(path);
    if (key.algorithm !== "hmac-sha256") throw new ReportKeyError(`${path}: unexpected key`);
    return key;
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(bytes);
  } catch (error) {
    throw new ReportKeyError(`${path} is not a PEM public key: ${(error as Error).message}`, { path });
  }
  if (publicKey.asymmetricKeyType !== "ed25519")
    throw new ReportKeyError(
      `${path} holds a ${publicKey.asymmetricKeyType} key; reports are signed with Ed25519`,
      {
        path,
      },
    );
  return { algorithm: "ed25519", publicKey };
}
