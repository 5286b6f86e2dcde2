/**
 * Shadow reads waiting to run or running, bounded together by `capacity`.
 *
 * The caller's path only pushes a small record (`offer`, tens of nanoseconds, no promise, no timer per
 * read): a full queue refuses it at once, so a slow side makes shadow reads be skipped, never makes
 * memory grow or the caller wait. One `setImmediate` per batch starts every queued job after the
 * callers of that event-loop turn have their results: the comparison, the diff, the latency samples
 * and the counters all run there, off the callers' path.
 */
export class ShadowQueue<Job> {
  private pending: Job[] = [];
  private drainScheduled = false;
  /** Jobs queued plus jobs running. */
  private active = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly capacity: number,
    /** Runs one job; its rejection goes to `onFailure` (the job itself should record its outcome). */
    private readonly run: (job: Job) => Promise<void>,
    private readonly onFailure: (error: unknown, job: Job) => void,
  ) {}

  /** Jobs queued or running. */
  get size(): number {
    return this.active;
  }

  /** Queues a job; false (nothing queued) when `capacity` jobs are already queued or running. */
  offer(job: Job): boolean {
    if (this.active >= this.capacity) return false;
    this.active++;
    this.pending.push(job);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(this.drain);
    }
    return true;
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private readonly drain = (): void => {
    this.drainScheduled = false;
    const batch = this.pending;
    this.pending = [];
    for (const job of batch) {
      let running: Promise<void>;
      try {
        running = this.run(job);
      } catch (error) {
        running = Promise.reject(error);
      }
      running.then(this.finished, (error: unknown) => {
        try {
          this.onFailure(error, job);
        } finally {
          this.finished();
        }
      });
    }
  };

  private readonly finished = (): void => {
    this.active--;
    if (this.active === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  };
}
