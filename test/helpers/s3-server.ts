import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import AWSAccount from "s3rver/lib/models/account.js";

export interface TestS3Server {
  /** http(s)://127.0.0.1:PORT */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  /** The secret access key: tests hand it over in an environment variable and look for it in output. */
  secret: string;
  /**
   * With tls: the self-signed certificate (also its own CA) as a PEM file, for 127.0.0.1 and localhost
   * (pgBackRest 2.45 matches only DNS names: it is given https://localhost:PORT).
   */
  certFile?: string;
  /** Where s3rver keeps an object's bytes on disk (to corrupt one the way bit rot would). */
  objectFile(key: string): string;
  stop(): Promise<void>;
}

/**
 * A real S3-compatible server (s3rver) on 127.0.0.1, one bucket, and an account whose secret is random
 * (s3rver's built-in account uses the same string as key id and secret, which would hide a leak).
 * With `tls`, it serves HTTPS with a self-signed certificate for 127.0.0.1 made by openssl.
 */
export async function startS3Server(options: { tls?: boolean; bucket?: string } = {}): Promise<TestS3Server> {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-s3rver-"));
  const bucket = options.bucket ?? "pgshift-offsite";
  const accessKeyId = `AKPGSHIFT${randomBytes(4).toString("hex").toUpperCase()}`;
  const secret = `s3-secret-${randomBytes(12).toString("hex")}`;
  new AWSAccount(100_000_000_000 + Math.floor(Math.random() * 1e9), "pgshift-test").createKeyPair(
    accessKeyId,
    secret,
  );
  let tls: { key: Buffer; cert: Buffer; certFile: string } | undefined;
  if (options.tls) {
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        keyFile,
        "-out",
        certFile,
        "-days",
        "2",
      ].concat(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]),
      { stdio: "ignore" },
    );
    tls = { key: readFileSync(keyFile), cert: readFileSync(certFile), certFile };
    // pgBackRest runs as the server's user and reads the CA file itself.
    chmodSync(dir, 0o755);
    chmodSync(certFile, 0o644);
  }
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    directory: join(dir, "data"),
    silent: true,
    configureBuckets: [{ name: bucket }],
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
  });
  const address = await server.run();
  return {
    endpoint: `${tls ? "https" : "http"}://127.0.0.1:${address.port}`,
    bucket,
    accessKeyId,
    secret,
    ...(tls ? { certFile: tls.certFile } : {}),
    objectFile: (key) => join(dir, "data", bucket, `${key}._S3rver_object`),
    stop: () => server.close(),
  };
}
