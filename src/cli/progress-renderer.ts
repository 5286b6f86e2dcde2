import cliProgress from "cli-progress";
import type { ProgressEvent } from "../progress.ts";
import type { Output } from "./output.ts";
import { escapeControl } from "./terminal-text.ts";

const MIN_SECONDS_FOR_RATE = 0.5;

interface TaskState {
  started: number;
  lastEmit: number;
  bar?: cliProgress.SingleBar;
}

function formatRate(rate: number): string {
  if (rate >= 1_000_000) return `${(rate / 1_000_000).toFixed(1)}M`;
  if (rate >= 1_000) return `${(rate / 1_000).toFixed(1)}k`;
  return rate.toFixed(0);
}

/**
 * Renders library progress events: bars with rate and ETA on a terminal, throttled JSON lines
 * (`{"event":"progress",...}`) on stderr otherwise.
 */
export class ProgressRenderer {
  private readonly tasks = new Map<string, TaskState>();
  private multibar?: cliProgress.MultiBar;

  constructor(
    private readonly out: Output,
    private readonly intervalMs = 1_000,
  ) {}

  readonly onProgress = (event: ProgressEvent): void => {
    const now = Date.now();
    let state = this.tasks.get(event.task);
    if (!state) {
      state = { started: now, lastEmit: 0 };
      this.tasks.set(event.task, state);
    }
    // A rate measured over a few milliseconds (a small table that arrives in one chunk) is noise, not a
    // figure: rate and ETA are given only once the task has run long enough to measure.
    const seconds = (now - state.started) / 1000;
    const measurable = seconds >= MIN_SECONDS_FOR_RATE && event.done > 0;
    const rate = measurable ? event.done / seconds : undefined;
    const etaSeconds =
      rate !== undefined && event.total !== undefined
        ? Math.max(0, (event.total - event.done) / rate)
        : undefined;
    if (this.out.tty) {
      this.multibar ??= new cliProgress.MultiBar(
        {
          format: " {task} |{bar}| {value}/{total} {unit}  {rate}/s  ETA {etaText}",
          hideCursor: true,
          clearOnComplete: false,
          stream: this.out.stderr,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      const payload = {
        task: escapeControl(event.task).padEnd(24).slice(0, 24),
        unit: event.unit,
        rate: rate === undefined ? "-" : formatRate(rate),
        etaText: event.finished ? "done" : etaSeconds === undefined ? "?" : `${Math.ceil(etaSeconds)}s`,
      };
      state.bar ??= this.multibar.create(event.total ?? 0, 0, payload);
      if (event.total !== undefined) state.bar.setTotal(event.total);
      state.bar.update(event.done, payload);
      return;
    }
    if (!event.finished && now - state.lastEmit < this.intervalMs) return;
    state.lastEmit = now;
    const line: Record<string, unknown> = {
      event: "progress",
      task: event.task,
      done: event.done,
      unit: event.unit,
    };
    if (event.total !== undefined) line.total = event.total;
    if (rate !== undefined) line.ratePerSecond = Math.round(rate);
    if (etaSeconds !== undefined) line.etaSeconds = Math.round(etaSeconds);
    if (event.finished) line.finished = true;
    this.out.stderr.write(`${JSON.stringify(line)}\n`);
  };

  stop(): void {
    this.multibar?.stop();
    this.multibar = undefined;
  }
}
