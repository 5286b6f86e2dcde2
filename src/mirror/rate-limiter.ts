import { setTimeout as sleep } from "node:timers/promises";

/**
 * Spaces request starts evenly at `perMinute` (240/min = one every 250 ms), shared by every caller of
 * one limiter: concurrent callers queue for the next free slot instead of bursting into a 429.
 */
export class RateLimiter {
  private nextSlot = 0;
  private readonly intervalMs: number;

  constructor(
    perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.intervalMs = perMinute > 0 ? 60_000 / perMinute : 0;
  }

  /** Resolves when the caller may start its request. */
  async take(signal?: AbortSignal): Promise<void> {
    if (this.intervalMs === 0) return;
    const now = this.now();
    const at = Math.max(now, this.nextSlot);
    this.nextSlot = at + this.intervalMs;
    if (at > now) await sleep(at - now, undefined, signal ? { signal } : undefined);
  }

  /** After a 429: nobody starts before `ms` from now. */
  pause(ms: number): void {
    this.nextSlot = Math.max(this.nextSlot, this.now() + ms);
  }
}
