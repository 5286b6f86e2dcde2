import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { PgshiftError } from "../errors.ts";
import { giveTo, type RunAs } from "./run-as.ts";

const run = promisify(execFile);

/** Where a managed instance keeps its certificate authority and server certificate. */
export function tlsDir(instanceDir: string): string {
  return join(instanceDir, "tls");
}

/** The CA certificate clients verify the server with (`sslrootcert`). */
export function caFile(instanceDir: string): string {
  return join(tlsDir(instanceDir), "ca.crt");
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (error) {
    throw new PgshiftError(
      "local_tls_failed",
      `openssl ${args[0]} failed making the instance's certificates: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}; install openssl or start without --tls`,
      { cause: error },
    );
  }
}

/**
 * On first use: a private CA (P-256, 10 years) and a server certificate it signs for 127.0.0.1 and
 * localhost, with OpenSSL. The server's copies go into the data directory, owned by the server's user,
 * the key mode 0600 as PostgreSQL demands. Later starts reuse them.
 */
export async function ensureTlsFiles(instanceDir: string, dataDir: string, runAs: RunAs): Promise<void> {
  const dir = tlsDir(instanceDir);
  if (!existsSync(join(dir, "server.crt"))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=pgshift local CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ],
      dir,
    );
    await openssl(
      ["req", "-new", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
      dir,
    );
    writeFileSync(
      join(dir, "server.ext"),
      "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n",
    );
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "825",
        "-extfile",
        "server.ext",
      ],
      dir,
    );
  }
  for (const name of ["server.crt", "server.key"]) {
    const target = join(dataDir, name);
    copyFileSync(join(dir, name), target);
    chmodSync(target, name.endsWith(".key") ? 0o600 : 0o644);
    giveTo(runAs, target);
  }
}

/** postgresql.conf lines turning TLS on with the copied files. */
export const TLS_SETTINGS = ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"];

/** pg_hba.conf with every TCP `host` line made `hostssl`: no connection without TLS. */
export function hostsslOnly(hba: string): string {
  return hba
    .split("\n")
    .map((line) => line.replace(/^host(\s)/, "hostssl$1"))
    .join("\n");
}
