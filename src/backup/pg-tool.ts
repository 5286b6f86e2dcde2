import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { findPgBinaries } from "../local/binaries.ts";
import { BackupError } from "./backup-error.ts";

/**
 * Running PostgreSQL's client tools (pg_dump, pg_restore, pg_basebackup, pg_amcheck, pg_waldump)
 * against a URL without the password ever reaching argv: it goes in PGPASSWORD, the URL loses it.
 */
export interface ToolTarget {
  args: string[];
  env: NodeJS.ProcessEnv;
}

export function toolTarget(url: string, flag = "--dbname"): ToolTarget {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = "";
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: "20" };
  if (password) env.PGPASSWORD = password;
  return { args: [`${flag}=${parsed.toString()}`], env };
}

/** The tool from the server binaries' directory when it is there, else from PATH. */
export function pgTool(name: string, binDir?: string): string {
  const dirs = [binDir];
  try {
    dirs.push(findPgBinaries().binDir);
  } catch {
    // no server binaries: PATH it is
  }
  for (const dir of dirs) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return name;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runTool(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 },
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

export async function mustRun(
  step: string,
  file: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<ToolResult> {
  const result = await runTool(file, args, env);
  if (result.code !== 0)
    throw new BackupError(step, `${file} failed (exit ${result.code}): ${result.stderr.trim().slice(-2000)}`);
  return result;
}

/** Resolves with the exit code and the last 8 KiB of stderr once the process exits. */
export function exited(child: ChildProcess): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-8192);
  });
  return new Promise((resolve) => {
    child.once("error", (error) => resolve({ code: 127, stderr: `${stderr}${error.message}` }));
    child.once("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr }));
  });
}

export { spawn };
