import { join } from "node:path";
import { redactText } from "../../src/config/redact.ts";
import { type MeasuredRun, type RunOptions, runMeasured } from "./measure.ts";

/** Runs the real CLI as a user does (`node bin/pgshift.js ...`), measured like every other contender. */
export function runPgshift(
  repoRoot: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<MeasuredRun> {
  return runMeasured(process.execPath, [join(repoRoot, "bin", "pgshift.js"), ...args], {
    cwd: repoRoot,
    ...options,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
  });
}

const helpCache = new Map<string, string>();
/** Why the last `--help` probe failed, for the scenario's notes. */
export const helpFailures = new Map<string, string>();

/**
 * The CLI's `--help` text for a command path, or undefined when the command does not exist. A failed
 * probe is retried once (a tree being edited can fail to load for a moment) and is not cached.
 */
export async function pgshiftHelp(repoRoot: string, command: string[]): Promise<string | undefined> {
  const key = command.join(" ");
  const cached = helpCache.get(key);
  if (cached !== undefined) return cached;
  // Commander prints the root help for an unknown command: only the command's own usage line counts.
  const usage = `Usage: pgshift ${key}`.trimEnd();
  for (let attempt = 0; attempt < 2; attempt++) {
    const run = await runPgshift(repoRoot, [...command, "--help"], { timeoutMs: 60_000 });
    if (run.exitCode === 0 && run.stdout.includes(usage)) {
      helpCache.set(key, run.stdout);
      helpFailures.delete(key);
      return run.stdout;
    }
    helpFailures.set(
      key,
      run.exitCode === 0 ? `\`pgshift ${key}\` is not a command in this build` : failureText(run, 3),
    );
    if (run.exitCode === 0) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  return undefined;
}

/** Whether `pgshift <command> --help` succeeds and mentions every flag in `flags`. */
export async function pgshiftSupports(
  repoRoot: string,
  command: string[],
  flags: string[] = [],
): Promise<boolean> {
  const help = await pgshiftHelp(repoRoot, command);
  return Boolean(help) && flags.every((flag) => help!.includes(flag));
}

/** The JSON result a `--json` command printed on stdout (a single JSON document), if any. */
export function parseJsonResult(stdout: string): Record<string, unknown> | undefined {
  const text = stdout.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Some commands may print JSON lines: take the last line that parses as an object.
    for (const line of text.split("\n").reverse()) {
      try {
        const value = JSON.parse(line) as unknown;
        if (value && typeof value === "object") return value as Record<string, unknown>;
      } catch {
        // not JSON
      }
    }
    return undefined;
  }
}

const secrets: string[] = [];

/** A secret (the bench instance's password) that must never reach a result file. */
export function addSecret(secret: string): void {
  if (secret) secrets.push(secret);
}

export function redactSecrets(text: string): string {
  return redactText(text, secrets);
}

/** The last few lines of a run's stderr, for a note when it failed; URLs and known secrets redacted. */
export function failureText(run: MeasuredRun, lines = 6): string {
  const text = (run.stderr.trim() || run.stdout.trim()).split("\n").slice(-lines).join(" | ");
  return redactText(`exit ${run.exitCode}: ${text.slice(0, 800)}`, secrets);
}
