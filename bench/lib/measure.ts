import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

export interface MeasuredRun {
  command: string;
  exitCode: number;
  wallMs: number;
  /** Highest sum of VmRSS over the process and all its descendants, sampled every `sampleMs`. */
  peakTreeRssMb: number;
  /** Highest VmHWM (kernel high-water mark) of any single process in the tree. */
  peakProcessRssMb: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  sampleMs?: number;
  /** Kill the process tree after this long (ms). */
  timeoutMs?: number;
  /** Output kept in memory is capped (the tail is kept). */
  maxOutputBytes?: number;
  /** Run as this user (root only): PostgreSQL's tools run as the server's own user. */
  uid?: number;
  gid?: number;
}

/** Process groups of measured runs still going: killed when the bench is interrupted. */
const activeGroups = new Set<number>();

export function killActiveRuns(): void {
  for (const pid of activeGroups) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  activeGroups.clear();
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Parent pid of every process, read from /proc/PID/stat (the comm field may contain spaces or parens). */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process ended between readdir and read
    }
  }
  return children;
}

export function processTree(root: number): number[] {
  const children = parentMap();
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function tail(text: string, max: number): string {
  return text.length > max ? text.slice(text.length - max) : text;
}

/**
 * Runs a command (argv form, no shell unless `file` is a shell) and measures its wall time and the
 * peak resident memory of its whole process tree. The PostgreSQL server is not in the tree: every
 * tool talks to the same server, so only the client side differs.
 */
export function runMeasured(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<MeasuredRun> {
  const sampleMs = options.sampleMs ?? 50;
  const maxOutput = options.maxOutputBytes ?? 4 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid } : {}),
    });
    if (child.pid !== undefined) activeGroups.add(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout = tail(stdout + chunk, maxOutput);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = tail(stderr + chunk, maxOutput);
    });
    let peakTreeKb = 0;
    let peakProcessKb = 0;
    const sample = () => {
      if (child.pid === undefined) return;
      let sum = 0;
      for (const pid of processTree(child.pid)) {
        sum += statusKb(pid, "VmRSS");
        peakProcessKb = Math.max(peakProcessKb, statusKb(pid, "VmHWM"));
      }
      peakTreeKb = Math.max(peakTreeKb, sum);
    };
    const timer = setInterval(sample, sampleMs);
    const killer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            if (child.pid !== undefined) {
              try {
                process.kill(-child.pid, "SIGKILL");
              } catch {
                // already gone
              }
            }
          }, options.timeoutMs);
    child.on("error", (error) => {
      clearInterval(timer);
      if (killer) clearTimeout(killer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      if (child.pid !== undefined) activeGroups.delete(child.pid);
      clearInterval(timer);
      if (killer) clearTimeout(killer);
      resolve({
        command: [file, ...args].join(" "),
        exitCode: code ?? (signal ? 128 : 1),
        wallMs: performance.now() - started,
        peakTreeRssMb: round(peakTreeKb / 1024, 1),
        peakProcessRssMb: round(peakProcessKb / 1024, 1),
        stdout,
        stderr: signal ? `${stderr}\n(killed by ${signal})` : stderr,
      });
    });
  });
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Nearest-rank percentile of already measured values (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Wall time of an in-process async function, in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}
