import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { BackupError } from "./backup-error.ts";
import { execFile, spawn } from "node:child_process";

/**
 * OpenPGP symmetric encryption with the standard `gpg` CLI, so any gpg can decrypt a backup.
 * The passphrase goes through file descriptor 3 (--passphrase-fd 3): never argv, env or a log.
 * Each run uses a private, throw-away GnuPG home so no user keyring or agent is touched.
 */
export interface GpgProcess {
  stdin: Writable;
  stdout: Readable;
  done: Promise<void>;
}

const GPG = process.env.PGSHIFT_GPG ?? "gpg";

function start(mode: "encrypt" | "decrypt", passphrase: Buffer): GpgProcess {
  const home = mkdtempSync(join(tmpdir(), "pgshift-gpg-"));
  const args = [
    "--homedir",
    home,
    "--batch",
    "--quiet",
    "--no-tty",
    "--pinentry-mode",
    "loopback",
    "--passphrase-fd",
    "3",
    "--no-symkey-cache",
  ];
  // An explicit S2K count (the largest OpenPGP allows: the strongest passphrase hashing) spares a fresh
  // gpg-agent its calibration, which took 2.4-4 s per dump on a loaded machine (bench: backup scenario).
  if (mode === "encrypt")
    args.push(
      "--symmetric",
      "--cipher-algo",
      "AES256",
      "--compress-algo",
      "none",
      "--s2k-mode",
      "3",
      "--s2k-digest-algo",
      "SHA256",
      "--s2k-count",
      "65011712",
    );
  else args.push("--decrypt");
  const child = spawn(GPG, args, { stdio: ["pipe", "pipe", "pipe", "pipe"] });
  const fd3 = child.stdio[3] as Writable;
  fd3.on("error", () => undefined);
  fd3.end(Buffer.concat([passphrase, Buffer.from("\n")]));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4096);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(new BackupError("gpg", `cannot run ${GPG}: ${error.message}`)));
    child.once("close", (code) => {
      // The agent gpg may have started lives in the throw-away home: stop it, then remove the home.
      execFile("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], () => {
        rmSync(home, { recursive: true, force: true });
        if (code === 0) resolve();
        else reject(new BackupError("gpg", `gpg ${mode} failed (exit ${code}): ${stderr.trim()}`));
      });
    });
  });
  return { stdin: child.stdin!, stdout: child.stdout!, done };
}

export function gpgEncrypt(passphrase: Buffer): GpgProcess {
  return start("encrypt", passphrase);
}

export function gpgDecrypt(passphrase: Buffer): GpgProcess {
  return start("decrypt", passphrase);
}
