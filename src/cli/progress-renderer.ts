import cliProgress from "cli-progress";
import type { ProgressEvent } from "../progress.ts";
import type { Output } from "./output.ts";
import { clock, type LineFigures, layout, logLine, terminalLine } from "./render/progress-line.ts";

const MIN_SECONDS_FOR_RATE = 0.5;
/** Bars for items in flight when the command does not say how many run at once. */
const DEFAULT_MAX_ITEMS = 6;
/** Plain log lines: one overall line at most this often (items' ends are written as they come). */
const DEFAULT_LOG_INTERVAL_MS = 5_000;
const DEFAULT_JSON_INTERVAL_MS = 1_000;

interface ItemState {
  task: string;
  done: number;
  total?: number;
  unit: string;
  started: number;
  lastEmit: number;
  bar?: cliProgress.SingleBar;
}

interface JobState {
  /** The first job's name ("import"); a job started inside it (its verification) shows as a phase. */
  label: string;
  /** The job whose figures these are now (the import's, or its verification's). */
  task: string;
  phase: string;
  done: number;
  total?: number;
  unit: string;
  after: number;
  phaseStarted: number;
  phaseStartDone: number;
  /** The last rate measured in a phase that moved rows: the ETA of the work after a phase without rows. */
  lastRate?: number;
}

function rateOf(done: number, since: number, now: number): number | undefined {
  const seconds = (now - since) / 1000;
  return seconds >= MIN_SECONDS_FOR_RATE && done > 0 ? done / seconds : undefined;
}

/**
 * Renders library progress events, in one of three ways:
 * - a terminal: one overall bar (phase, rows, rate, ETA of the whole job) and bars only for the items in
 *   flight, at most `maxItems`; a finished item leaves the display (the summary lists it);
 * - no terminal (a CI log): plain lines, the overall one every few seconds and one per finished item;
 * - `--json`: throttled JSON lines (`{"event":"progress",...}`), every event's fields.
 */
export class ProgressRenderer {
  private readonly items = new Map<string, ItemState>();
  private job?: JobState;
  private multibar?: cliProgress.MultiBar;
  private overall?: cliProgress.SingleBar;
  private started?: number;
  private finishedItems = 0;
  private lastLog = 0;
  private maxItems = DEFAULT_MAX_ITEMS;
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** Bars that redraw in place: a terminal that can move the cursor (TERM=dumb cannot). */
  private readonly live: boolean;

  /**
   * `intervalMs`: at most one overall line (or JSON line per task) this often, default 5 s for plain
   * lines and 1 s for JSON; `now`: the clock (tests give their own).
   */
  constructor(
    private readonly out: Output,
    options: { intervalMs?: number; now?: () => number } = {},
  ) {
    this.intervalMs = options.intervalMs ?? (out.json ? DEFAULT_JSON_INTERVAL_MS : DEFAULT_LOG_INTERVAL_MS);
    this.now = options.now ?? Date.now;
    this.live = out.tty && process.env.TERM !== "dumb";
  }

  /** How many items can be in flight at once (jobs + verification workers): no more bars than that. */
  setMaxItems(n: number): void {
    this.maxItems = Math.max(1, Math.floor(n));
  }

  readonly onProgress = (event: ProgressEvent): void => {
    const now = this.now();
    if (this.started === undefined) {
      this.started = now;
      // In a log, a phase without events of its own (index builds) still shows every few seconds.
      if (!this.live && !this.out.json && this.intervalMs > 0) {
        this.timer = setInterval(() => {
          if (this.now() - this.lastLog >= this.intervalMs) this.logOverall(this.now());
        }, this.intervalMs);
        this.timer.unref();
      }
    }
    if (event.scope === "job") this.onJob(event, now);
    else this.onItem(event, now);
  };

  private onJob(event: ProgressEvent, now: number): void {
    const previous = this.job;
    const phase = event.phase ?? "";
    // A job started inside another (the import's verification) starts a phase of its own.
    const phaseChanged = !previous || previous.phase !== phase || previous.task !== event.task;
    if (phaseChanged) {
      const moved = previous
        ? rateOf(previous.done - previous.phaseStartDone, previous.phaseStarted, now)
        : undefined;
      this.job = {
        label: previous?.label ?? event.task,
        task: event.task,
        phase,
        done: event.done,
        unit: event.unit,
        after: event.after ?? 0,
        phaseStarted: now,
        phaseStartDone: event.done,
        ...(event.total !== undefined ? { total: event.total } : {}),
        ...((moved ?? previous?.lastRate) !== undefined ? { lastRate: (moved ?? previous?.lastRate)! } : {}),
      };
      // Items of the phase that ended leave the display with it.
      for (const item of [...this.items.values()]) this.dropItem(item);
    } else {
      const job = this.job!;
      job.done = event.done;
      job.unit = event.unit;
      job.after = event.after ?? 0;
      if (event.total !== undefined) job.total = event.total;
    }
    if (this.out.json) {
      if (phaseChanged || event.finished || now - this.lastLog >= this.intervalMs) {
        this.lastLog = now;
        this.jsonLine(event, now, this.job!.phaseStarted, this.job!.phaseStartDone);
      }
      return;
    }
    if (this.live) return this.draw();
    if (now - this.lastLog >= this.intervalMs) this.logOverall(now);
  }

  private onItem(event: ProgressEvent, now: number): void {
    let item = this.items.get(event.task);
    if (!item) {
      item = { task: event.task, done: 0, unit: event.unit, started: now, lastEmit: 0 };
      this.items.set(event.task, item);
    }
    item.done = event.done;
    item.unit = event.unit;
    if (event.total !== undefined) item.total = event.total;
    if (this.out.json) {
      if (event.finished || now - item.lastEmit >= this.intervalMs) {
        item.lastEmit = now;
        this.jsonLine(event, now, item.started, 0);
      }
      if (event.finished) this.dropItem(item, true);
      return;
    }
    if (this.live) {
      if (event.finished) this.dropItem(item, true);
      return this.draw();
    }
    if (event.finished) {
      this.dropItem(item, true);
      const seconds = (now - item.started) / 1000;
      this.out.stderr.write(
        `${logLine(this.elapsed(now), { label: item.task, done: item.done, unit: item.unit, tail: seconds >= 1 ? `done in ${seconds.toFixed(1)}s` : "done" })}\n`,
      );
    }
  }

  private dropItem(item: ItemState, finished = false): void {
    if (!this.items.delete(item.task)) return;
    if (finished) this.finishedItems++;
    if (item.bar) this.multibar?.remove(item.bar);
  }

  private elapsed(now: number): number {
    return (now - (this.started ?? now)) / 1000;
  }

  private itemFigures(item: ItemState, now: number): LineFigures {
    const rate = rateOf(item.done, item.started, now);
    return {
      label: item.task,
      done: item.done,
      unit: item.unit,
      ...(item.total !== undefined ? { total: item.total } : {}),
      ...(rate !== undefined ? { rate } : {}),
      ...(rate !== undefined && item.total !== undefined
        ? { etaSeconds: Math.max(0, item.total - item.done) / rate }
        : {}),
    };
  }

  private overallFigures(now: number, hidden: number): LineFigures {
    const more = hidden > 0 ? `+${hidden} more` : undefined;
    const job = this.job;
    if (!job) {
      const inFlight = this.items.size;
      return {
        label: "progress",
        done: this.finishedItems,
        unit: "done",
        tail: [`${inFlight} in flight`, clock(this.elapsed(now))].join("  "),
      };
    }
    const phaseRate = rateOf(job.done - job.phaseStartDone, job.phaseStarted, now);
    const rate = phaseRate ?? job.lastRate;
    const left = (job.total !== undefined ? Math.max(0, job.total - job.done) : 0) + job.after;
    const known = job.total !== undefined || job.after > 0;
    return {
      label: job.label,
      ...(job.phase && job.phase !== job.label ? { phase: job.phase } : {}),
      done: job.done,
      unit: job.unit,
      ...(job.total !== undefined ? { total: job.total } : {}),
      ...(phaseRate !== undefined ? { rate: phaseRate } : {}),
      ...(rate !== undefined && known ? { etaSeconds: left / rate } : {}),
      ...(more ? { tail: more } : {}),
    };
  }

  private overallLine(now: number, hidden: number, columns: number): string {
    const figures = this.overallFigures(now, hidden);
    return terminalLine(figures, layout(columns));
  }

  private columns(): number {
    return this.out.stderr.columns || 80;
  }

  /** Brings the bars in line with the items in flight (the first `maxItems` of them) and redraws. */
  private draw(): void {
    const now = this.now();
    if (!this.multibar) process.once("exit", this.showCursor);
    this.multibar ??= new cliProgress.MultiBar({
      format: (_options, _params, payload: { line: string }) => payload.line,
      stream: this.out.stderr,
      hideCursor: true,
      // The display is cleared at the end; stop() writes the last line itself, when it says something.
      clearOnComplete: true,
      // Bars move up when one above them leaves: each must be drawn again even if its text is the same.
      forceRedraw: true,
      fps: 8,
    });
    const visible = [...this.items.values()].slice(0, this.maxItems);
    const hidden = this.items.size - visible.length;
    const columns = this.columns();
    const overallLine = this.overallLine(now, hidden, columns);
    if (!this.overall) this.overall = this.multibar.create(1, 0, { line: overallLine });
    else this.overall.update(0, { line: overallLine });
    for (const item of [...this.items.values()].slice(this.maxItems)) {
      if (item.bar) {
        this.multibar.remove(item.bar);
        delete item.bar;
      }
    }
    for (const item of visible) {
      const line = terminalLine(this.itemFigures(item, now), { ...layout(columns), item: true });
      if (!item.bar) item.bar = this.multibar.create(1, 0, { line });
      else item.bar.update(0, { line });
    }
  }

  /** The bars hide the cursor; a process that exits without stop() (a signal) must not leave it hidden. */
  private readonly showCursor = (): void => {
    if (this.multibar) this.out.stderr.write("\x1b[?25h");
  };

  /** Draws the display now instead of at the next frame (tests, and the last frame). */
  redraw(): void {
    if (this.multibar) {
      this.draw();
      this.multibar.update();
    }
  }

  private logOverall(now: number): void {
    this.lastLog = now;
    const figures = this.overallFigures(now, 0);
    const names = [...this.items.values()].map((item) =>
      item.total ? `${item.task} ${Math.floor((item.done / item.total) * 100)}%` : item.task,
    );
    if (names.length)
      figures.tail = `in flight: ${names.slice(0, 6).join(", ")}${names.length > 6 ? `, +${names.length - 6} more` : ""}`;
    this.out.stderr.write(`${logLine(this.elapsed(now), figures)}\n`);
  }

  private jsonLine(event: ProgressEvent, now: number, since: number, baseDone: number): void {
    const rate = rateOf(event.done - baseDone, since, now);
    const etaSeconds =
      rate !== undefined && event.total !== undefined
        ? Math.max(0, event.total - event.done + (event.after ?? 0)) / rate
        : undefined;
    const line: Record<string, unknown> = {
      event: "progress",
      task: event.task,
      done: event.done,
      unit: event.unit,
    };
    if (event.total !== undefined) line.total = event.total;
    if (event.scope) line.scope = event.scope;
    if (event.phase) line.phase = event.phase;
    if (event.after) line.after = event.after;
    if (rate !== undefined) line.ratePerSecond = Math.round(rate);
    if (etaSeconds !== undefined) line.etaSeconds = Math.round(etaSeconds);
    if (event.finished) line.finished = true;
    this.out.stderr.write(`${JSON.stringify(line)}\n`);
  }

  /** Ends the display: item bars go, the overall line stays as the last frame drew it. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.multibar) {
      process.removeListener("exit", this.showCursor);
      this.multibar.stop();
      // The last line says how long the job took instead of a rate and an ETA; a job that failed
      // before counting anything (the target's tables exist) leaves nothing.
      const job = this.job;
      if (job && (job.total !== undefined || job.done > 0)) {
        const { rate: _rate, etaSeconds: _eta, tail: _tail, ...figures } = this.overallFigures(this.now(), 0);
        const line = terminalLine(
          { ...figures, elapsedSeconds: this.elapsed(this.now()) },
          layout(this.columns()),
        );
        this.out.stderr.write(`${line}\n`);
      }
    }
    this.multibar = undefined;
    this.overall = undefined;
    this.items.clear();
  }
}
