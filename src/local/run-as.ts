import { execFile, execFileSync } from "node:child_process";
import { chownSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { PgshiftError } from "../errors.ts";

/** Who the managed server runs as: the current user, or an unprivileged one when we are root. */
export interface RunAs {
  user: string;
  uid?: number;
  gid?: number;
}

/** PostgreSQL refuses to run as root, so under root pick PGSHIFT_LOCAL_USER, else `postgres`, else `nobody`. */
export function chooseRunAs(env: NodeJS.ProcessEnv = process.env): RunAs {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    return { user: env.USER ?? env.LOGNAME ?? "current user" };
  }
  const candidates = env.PGSHIFT_LOCAL_USER ? [env.PGSHIFT_LOCAL_USER] : ["postgres", "nobody"];
  for (const user of candidates) {
    try {
      const uid = Number(
        execFileSync("id", ["-u", user], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(),
      );
      const gid = Number(
        execFileSync("id", ["-g", user], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(),
      );
      if (uid !== 0) return { user, uid, gid };
    } catch {
      // not present on this machine; try the next one
    }
  }
  throw new PgshiftError(
    "no_unprivileged_user",
    `running as root, and none of ${candidates.join(", ")} exists to run PostgreSQL as: create one or set PGSHIFT_LOCAL_USER`,
  );
}

/** Makes `path` (recursively) owned by the run-as user; a no-op when not root. */
export function giveTo(runAs: RunAs, path: string): void {
  if (runAs.uid === undefined || runAs.gid === undefined) return;
  chownSync(path, runAs.uid, runAs.gid);
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) giveTo(runAs, join(path, entry));
  }
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a PostgreSQL tool as the run-as user; never throws on a non-zero exit, the caller decides. */
export function runAsUser(
  runAs: RunAs,
  file: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 120_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd,
        timeout: timeoutMs,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", LANG: "C" },
        ...(runAs.uid !== undefined ? { uid: runAs.uid, gid: runAs.gid } : {}),
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({
          code,
          stdout: String(stdout),
          stderr: String(stderr || (error && !stderr ? error.message : "")),
        });
      },
    );
  });
}

/** Fails early, with a fix, when the run-as user cannot reach the instance directory. */
export function assertReachable(runAs: RunAs, dir: string): void {
  if (runAs.uid === undefined) return;
  try {
    execFileSync("test", ["-r", dir, "-a", "-x", dir, "-a", "-w", dir], {
      uid: runAs.uid,
      gid: runAs.gid,
      stdio: "ignore",
    });
  } catch {
    throw new PgshiftError(
      "local_dir_unreachable",
      `the managed PostgreSQL runs as user ${runAs.user}, who cannot reach ${dir}: allow others to traverse its parent directories (chmod o+x) or set PGSHIFT_LOCAL_DIR to a directory ${runAs.user} can reach`,
    );
  }
}
