/**
 * Progress flows out of the library as events; the library never renders it. The CLI draws bars on a
 * terminal, plain lines in a log and JSON lines with --json; the metrics endpoint reads the same events.
 *
 * Two scopes: one "job" figure per run (all rows of all tables, the phase running now), and "item"
 * figures for what is in flight (one table, file or chunk), each ending with `finished`.
 */
export interface ProgressEvent {
  /** What is progressing, e.g. a table name, "verify orders", or the job's name ("import"). */
  task: string;
  done: number;
  /** Unknown totals are left out; renderers then show a count and rate without ETA. */
  total?: number;
  unit: string;
  /** The task has finished (successfully or not). */
  finished?: boolean;
  /** "job": the run as a whole (one overall bar); "item" (the default): one table, file, chunk. */
  scope?: "job" | "item";
  /** With scope "job": the step running now ("data", "indexes", "verify"), named on the overall bar. */
  phase?: string;
  /**
   * With scope "job": work the run still has after this phase, in `unit` (verification reads every
   * row again), so that the ETA covers the whole job and not only the phase running now.
   */
  after?: number;
}

export type ProgressCallback = (event: ProgressEvent) => void;

/** A logger the library may be given; silent by default. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined };

/**
 * The job-level figure of a run, kept in one place: phases start, the figure moves, and each change
 * goes out as a `scope: "job"` event.
 *
 *   const job = new JobProgress(onProgress, "import", "rows");
 *   job.phase("data", { total: 2_400_000, after: 2_400_000 });
 *   job.update(1_200_000);
 */
export class JobProgress {
  private phaseName = "";
  private done = 0;
  private total: number | undefined;
  private after = 0;

  constructor(
    private readonly onProgress: ProgressCallback,
    readonly task: string,
    private readonly unit: string,
  ) {}

  /** A new phase starts; figures not given are kept (a phase without rows of its own keeps the last). */
  phase(name: string, figures: { done?: number; total?: number; after?: number } = {}): void {
    this.phaseName = name;
    if (figures.done !== undefined) this.done = figures.done;
    if (figures.total !== undefined) this.total = figures.total;
    if (figures.after !== undefined) this.after = figures.after;
    this.emit();
  }

  /** Sets the figures the next phases start from, without an event. */
  expect(figures: { total?: number; after?: number }): void {
    if (figures.total !== undefined) this.total = figures.total;
    if (figures.after !== undefined) this.after = figures.after;
  }

  update(done: number, finished = false): void {
    this.done = done;
    this.emit(finished);
  }

  /**
   * A callback for a phase whose items (e.g. `verify orders`) each count their own rows: item events
   * pass through, and their sum is the job's figure.
   */
  sumOfItems(): ProgressCallback {
    const perItem = new Map<string, number>();
    return (event) => {
      this.onProgress(event);
      if (event.scope === "job" || event.unit !== this.unit) return;
      perItem.set(event.task, event.done);
      let sum = 0;
      for (const n of perItem.values()) sum += n;
      this.update(sum);
    };
  }

  private emit(finished = false): void {
    this.onProgress({
      task: this.task,
      scope: "job",
      phase: this.phaseName,
      done: this.done,
      ...(this.total !== undefined ? { total: this.total } : {}),
      unit: this.unit,
      ...(this.after ? { after: this.after } : {}),
      ...(finished ? { finished } : {}),
    });
  }
}
