import { setTimeout as sleep } from "node:timers/promises";
import { isConnectionLost, isLockNotAvailable } from "./errors.ts";

export interface RetryOptions {
  /** Attempts after the first one. */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Which errors to retry; default: lock-not-available (55P03) and lost connections only. */
  retryOn?: (error: unknown) => boolean;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
}

export const isRetryable = (error: unknown): boolean => isLockNotAvailable(error) || isConnectionLost(error);

/** Capped exponential backoff with full jitter: a delay in [0, min(max, base * 2^attempt)). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** Runs `fn`, retrying only the named failures with capped, jittered backoff. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const retries = options.retries ?? 5;
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 5_000;
  const retryOn = options.retryOn ?? isRetryable;
  const random = options.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= retries || !retryOn(error)) throw error;
      // An open circuit breaker says when it lets the next probe through: waiting less only fails again.
      const delayMs = Math.max(backoffDelay(attempt, base, max, random), untilProbe(error));
      options.onRetry?.({ attempt: attempt + 1, delayMs, error });
      await sleep(delayMs);
    }
  }
}

/** Milliseconds until an open breaker's next probe (CircuitOpenError.nextProbeAt), else 0. */
function untilProbe(error: unknown): number {
  const at = (error as { nextProbeAt?: unknown } | null)?.nextProbeAt;
  return at instanceof Date ? Math.max(0, at.getTime() - Date.now()) : 0;
}
