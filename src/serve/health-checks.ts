import type pg from "pg";

/** One check's answer, in the health+json style (draft-inadarei-api-health-check). */
export interface CheckResult {
  status: "pass" | "warn" | "fail";
  observedValue?: number | string | boolean;
  observedUnit?: string;
  /** Why it failed or warns, in words. */
  output?: string;
}

export interface HealthCheck {
  /** `component:measurement`, e.g. `database:responseTime`. */
  name: string;
  /** Counts for /readyz (default true); false: reported by /status only. */
  ready?: boolean;
  /** Deadline of one run (default: the server's readyTimeoutMs). */
  timeoutMs?: number;
  run(signal: AbortSignal): Promise<CheckResult>;
}

export interface TimedCheckResult extends CheckResult {
  name: string;
  ready: boolean;
  /** ISO time the check finished. */
  time: string;
  durationMs: number;
}

/** Runs a check under its deadline: a check that does not answer in time fails, naming the deadline. */
export async function runCheck(check: HealthCheck, defaultTimeoutMs: number): Promise<TimedCheckResult> {
  const timeoutMs = check.timeoutMs ?? defaultTimeoutMs;
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let result: CheckResult;
  try {
    result = await Promise.race([
      check.run(controller.signal),
      new Promise<CheckResult>((resolve) => {
        timer = setTimeout(() => {
          controller.abort();
          resolve({ status: "fail", output: `no answer within ${timeoutMs} ms` });
        }, timeoutMs);
      }),
    ]);
  } catch (error) {
    result = { status: "fail", output: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
  return {
    name: check.name,
    ready: check.ready ?? true,
    ...result,
    time: new Date().toISOString(),
    durationMs: Math.round((performance.now() - started) * 10) / 10,
  };
}

/**
 * The database check /readyz always has: a pool checkout and `select 1`. A checkout that arrives after
 * the deadline is released at once, so a slow database does not leak connections.
 */
export function databaseCheck(
  pool: pg.Pool,
  onDuration?: (seconds: number, ok: boolean) => void,
): HealthCheck {
  return {
    name: "database:responseTime",
    async run(signal) {
      const started = performance.now();
      const client = await pool.connect();
      if (signal.aborted) {
        client.release();
        return { status: "fail", output: "checkout arrived after the deadline" };
      }
      try {
        await client.query("select 1");
        client.release();
      } catch (error) {
        client.release(error instanceof Error ? error : new Error(String(error)));
        onDuration?.((performance.now() - started) / 1000, false);
        throw error;
      }
      const seconds = (performance.now() - started) / 1000;
      onDuration?.(seconds, true);
      return { status: "pass", observedValue: Math.round(seconds * 10000) / 10, observedUnit: "ms" };
    },
  };
}
