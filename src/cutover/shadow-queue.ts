/**
 * Shadow reads waiting to run or running, bounded together by `capacity`; at most `concurrency` run at
 * once (so shadow reads never hold more than that many of the other side's connections), the rest
 * start as running ones finish.
 *
 * The caller's path only pushes a small record (`offer`): a full queue refuses it at once, so a slow
 * side makes shadow reads be skipped, never makes memory grow or the caller wait. The queued jobs
 * start from a drain that runs in the event loop's check phase (a `setImmediate`), after the callers
 * of that loop turn have their results: the other side's read, the comparison, the diff, the latency
 * samples and the counters all run there, off the callers' path.
 *
 * Why the drain stays armed: creating an Immediate, and above all ref'ing it (a call into Node's C++
 * timers binding), was the most expensive thing left on the caller's path. Measured after an idle
 * pause, when caches are cold, it cost a 4 µs in-memory read 10-20 %. So after each drain the queue
 * re-arms an *unref'd* Immediate: it never keeps the process alive or the loop awake (the loop still
 * blocks waiting for events), and runs in the check phase of whatever loop turn comes next, which
 * is the turn of the caller's read when the read came from a timer, I/O or promise callback. The
 * next offer then only pushes. After `emptyDrainsBeforeDisarm` turns without a job it disarms, and
 * the first offer after that arms a ref'd Immediate itself.
 *
 * One case waits longer: a read made from another `setImmediate` callback that runs after the armed
 * drain in the same check phase is drained on the next loop turn, i.e. at the next event. `idle()`
 * refs the drain, so settling (and `close()`) never waits on traffic.
 */
export class ShadowQueue<Job> {
  private pending: Job[] = [];
  private drainHook: NodeJS.Immediate | undefined;
  private drainHookRefed = false;
  private emptyDrains = 0;
  /** Jobs queued plus jobs running. */
  private active = 0;
  private running = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly capacity: number,
    /** Runs one job; its rejection goes to `onFailure` (the job itself should record its outcome). */
    private readonly run: (job: Job) => Promise<void>,
    private readonly onFailure: (error: unknown, job: Job) => void,
    private readonly emptyDrainsBeforeDisarm = 8,
    private readonly concurrency = Number.POSITIVE_INFINITY,
  ) {}

  /** Jobs queued or running. */
  get size(): number {
    return this.active;
  }

  /** Whether a drain is scheduled (ref'd or not): the next offer needs no timer of its own. */
  get armed(): boolean {
    return this.drainHook !== undefined;
  }

  /** Queues a job; false (nothing queued) when `capacity` jobs are already queued or running. */
  offer(job: Job): boolean {
    if (this.active >= this.capacity) return false;
    this.active++;
    this.pending.push(job);
    if (this.drainHook === undefined) {
      this.drainHook = setImmediate(this.drain);
      this.drainHookRefed = true;
    }
    return true;
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    if (this.drainHook && !this.drainHookRefed) {
      this.drainHook.ref();
      this.drainHookRefed = true;
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private readonly drain = (): void => {
    this.drainHook = undefined;
    if (this.pending.length === 0) {
      if (++this.emptyDrains >= this.emptyDrainsBeforeDisarm) return;
    } else this.emptyDrains = 0;
    this.drainHook = setImmediate(this.drain).unref();
    this.drainHookRefed = false;
    this.startJobs();
  };

  /** Starts queued jobs while fewer than `concurrency` run. */
  private startJobs(): void {
    while (this.running < this.concurrency && this.pending.length > 0) {
      const job = this.pending.shift()!;
      this.running++;
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
  }

  private readonly finished = (): void => {
    this.running--;
    this.active--;
    // A finished job makes room for a queued one (this runs off the callers' path too).
    this.startJobs();
    if (this.active === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  };
}
