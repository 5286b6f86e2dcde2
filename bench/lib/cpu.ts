import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * CPU seconds spent by the client side (processes this bench started and waited for) and by the
 * PostgreSQL server (the postmaster, its live children and the children it reaped), read from /proc.
 * On a machine with N cores no run can take less wall time than its total CPU / N, which is what
 * these figures are for.
 */
export interface CpuSnapshot {
  client: number;
  server: number;
}

const TICKS_PER_SECOND = 100;

/** utime, stime, cutime, cstime of a process, in ticks (fields 14-17 of /proc/PID/stat). */
function times(pid: number | "self"): [number, number, number, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): field N is fields[N - 3].
    return [Number(fields[11]), Number(fields[12]), Number(fields[13]), Number(fields[14])];
  } catch {
    return undefined;
  }
}

function childrenOf(parent: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) found.push(Number(entry));
    } catch {
      // ended between readdir and read
    }
  }
  return found;
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Current totals; `undefined` fields of /proc (not Linux, server gone) count as 0. */
export function cpuSnapshot(dataDir: string): CpuSnapshot {
  const self = times("self");
  const client = self ? (self[2] + self[3]) / TICKS_PER_SECOND : 0;
  const pid = postmasterPid(dataDir);
  let server = 0;
  if (pid !== undefined) {
    const own = times(pid);
    if (own) server += own[0] + own[1] + own[2] + own[3];
    for (const child of childrenOf(pid)) {
      const t = times(child);
      if (t) server += t[0] + t[1];
    }
  }
  return { client, server: server / TICKS_PER_SECOND };
}

/** CPU seconds used since `before`, rounded to hundredths. */
export function cpuSince(before: CpuSnapshot, dataDir: string): CpuSnapshot {
  const now = cpuSnapshot(dataDir);
  return {
    client: Math.round((now.client - before.client) * 100) / 100,
    server: Math.round((now.server - before.server) * 100) / 100,
  };
}
