import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const PGSHIFT_BIN = fileURLToPath(new URL("../../bin/pgshift.js", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a user would (`node bin/pgshift.js ...`) and collects its output. */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    for (const key of ["DATABASE_URL", "PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPORT"]) {
      if (!(options.env && key in options.env)) delete env[key];
    }
    const child = spawn(process.execPath, [PGSHIFT_BIN, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 180_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/**
 * The human text of a run's stderr: with `--json` each line is an event (`{"event":"error","message":...}`),
 * whose message is taken; plain lines are kept as they are.
 */
export function stderrText(stderr: string): string {
  return stderr
    .split("\n")
    .map((line) => {
      try {
        const event = JSON.parse(line) as { message?: unknown };
        return typeof event.message === "string" ? event.message : line;
      } catch {
        return line;
      }
    })
    .join("\n");
}
