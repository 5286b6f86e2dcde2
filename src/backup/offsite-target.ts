import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { S3Client } from "@aws-sdk/client-s3";
import { redactText } from "../config/redact.ts";
import { SettingsError } from "../errors.ts";
import { BackupError } from "./backup-error.ts";
import { readSecret, type SecretSource } from "./passphrase.ts";

/**
 * Where an off-site copy goes: `s3://bucket/prefix` on AWS or any S3-compatible server (`endpoint`).
 * The secret access key is only ever named (a file or an environment variable), never held here, so a
 * target can be logged, reported and put in JSON as it is.
 */
export interface OffsiteTarget {
  bucket: string;
  /** Key prefix without leading or trailing "/"; "" for the bucket's root. */
  prefix: string;
  /** `https://host:port` of an S3-compatible server; absent for AWS itself. */
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secret: SecretSource;
  /** PEM file of the CA that signed the endpoint's certificate (a private CA, a self-signed server). */
  caFile?: string;
}

/** What flags and environment give, before validation. */
export interface OffsiteTargetInput {
  url?: string;
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretEnv?: string;
  secretFile?: string;
  caFile?: string;
}

/**
 * Validates an off-site target once, every problem reported together (SettingsError, exit 2). Flags win
 * over the environment: PGSHIFT_S3_URL, PGSHIFT_S3_ENDPOINT, PGSHIFT_S3_REGION (or AWS_REGION),
 * PGSHIFT_S3_ACCESS_KEY_ID (or AWS_ACCESS_KEY_ID); the secret is read from `--s3-secret-file`, from
 * `--s3-secret-env VAR`, or else from AWS_SECRET_ACCESS_KEY, and never taken as a literal.
 *
 *   loadOffsiteTarget({ url: "s3://backups/app", endpoint: "https://minio:9000", secretEnv: "S3_SECRET" })
 */
export function loadOffsiteTarget(
  input: OffsiteTargetInput,
  env: NodeJS.ProcessEnv = process.env,
): OffsiteTarget {
  const problems: string[] = [];
  const url = input.url ?? env.PGSHIFT_S3_URL;
  let bucket = "";
  let prefix = "";
  if (!url) problems.push("no off-site target: pass --s3 s3://BUCKET/PREFIX or set PGSHIFT_S3_URL");
  else {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!match) problems.push(`--s3 must look like s3://BUCKET/PREFIX, got ${url}`);
    else {
      bucket = match[1]!;
      prefix = match[2]!.replace(/\/+$/, "");
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
        problems.push(`bucket name ${bucket} is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')`);
      if (prefix !== "" && prefix.split("/").some((part) => part === "" || part === "." || part === ".."))
        problems.push(`prefix ${prefix} must not contain empty, '.' or '..' parts`);
    }
  }
  const endpoint = input.endpoint ?? env.PGSHIFT_S3_ENDPOINT;
  if (endpoint !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(endpoint);
    } catch {
      problems.push(`--s3-endpoint must be a URL like https://host:port, got ${endpoint}`);
    }
    if (parsed && (!/^https?:$/.test(parsed.protocol) || parsed.pathname.replace(/\/$/, "") !== ""))
      problems.push(`--s3-endpoint must be http(s)://host[:port] without a path, got ${endpoint}`);
    if (parsed && (parsed.username || parsed.password))
      problems.push("--s3-endpoint must not carry credentials: pass --s3-access-key-id and --s3-secret-env");
  }
  const region = input.region ?? env.PGSHIFT_S3_REGION ?? env.AWS_REGION ?? "us-east-1";
  const accessKeyId = input.accessKeyId ?? env.PGSHIFT_S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
  if (!accessKeyId)
    problems.push("no S3 access key id: pass --s3-access-key-id or set PGSHIFT_S3_ACCESS_KEY_ID");
  if (input.secretEnv && input.secretFile)
    problems.push("pass either --s3-secret-env or --s3-secret-file, not both");
  const secret: SecretSource = input.secretFile
    ? { file: input.secretFile }
    : { env: input.secretEnv ?? "AWS_SECRET_ACCESS_KEY" };
  if (problems.length) throw new SettingsError(problems);
  return {
    bucket,
    prefix,
    ...(endpoint !== undefined ? { endpoint: endpoint.replace(/\/$/, "") } : {}),
    region,
    accessKeyId: accessKeyId!,
    secret,
    ...(input.caFile ? { caFile: input.caFile } : {}),
  };
}

/** `s3://bucket/prefix` (and the endpoint when not AWS): how results and errors name the target. */
export function describeOffsiteTarget(target: OffsiteTarget): string {
  const url = `s3://${target.bucket}${target.prefix ? `/${target.prefix}` : ""}`;
  return target.endpoint ? `${url} at ${target.endpoint}` : url;
}

/** The object key of a repository-relative path. */
export function objectKey(target: OffsiteTarget, path: string): string {
  return target.prefix ? `${target.prefix}/${path}` : path;
}

/** A connected client and what it needs to name failures without the secret. */
export interface OffsiteConnection {
  client: S3Client;
  target: OffsiteTarget;
  /** Wraps an SDK failure into a BackupError naming the target and what was being done. */
  fail(error: unknown, doing: string): BackupError;
  close(): void;
}

/**
 * The S3 client for a target. Request checksums are computed only where S3 requires them (checksum
 * trailers are an S3 feature many compatible servers do not speak); integrity is proved by pgshift's
 * own sha256, recorded on each object and compared by reading the object back.
 */
export function connectOffsite(
  target: OffsiteTarget,
  env: NodeJS.ProcessEnv = process.env,
): OffsiteConnection {
  const secret = readSecret(target.secret, "S3 secret access key", env).toString("utf8");
  const ca = target.caFile ? readFileSync(target.caFile) : undefined;
  const client = new S3Client({
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: secret },
    ...(target.endpoint ? { endpoint: target.endpoint, forcePathStyle: true } : {}),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: 10_000,
      requestTimeout: 300_000,
      ...(ca ? { httpsAgent: new Agent({ ca, keepAlive: true }) } : {}),
    },
  });
  const where = describeOffsiteTarget(target);
  return {
    client,
    target,
    fail(error, doing) {
      if (error instanceof BackupError) return error;
      const e = error as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode;
      const reason = [e.name && e.name !== "Error" ? e.name : e.code, e.message].filter(Boolean).join(": ");
      const hint =
        e.name === "NoSuchBucket"
          ? "; create the bucket first"
          : e.name === "InvalidAccessKeyId" || e.name === "SignatureDoesNotMatch" || status === 403
            ? "; check --s3-access-key-id and the secret (--s3-secret-env / --s3-secret-file)"
            : status === undefined
              ? "; check --s3-endpoint and that the server is reachable"
              : "";
      return new BackupError(
        "offsite",
        redactText(
          `off-site storage ${where}: ${doing} failed (${reason}${status ? `, HTTP ${status}` : ""})${hint}`,
          [secret],
        ),
        { cause: error, details: { target: where, ...(status ? { httpStatus: status } : {}) } },
      );
    },
    close() {
      client.destroy();
    },
  };
}
