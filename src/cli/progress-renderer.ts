import cliProgress from "cli-progress";
import type { ProgressEvent } from "../progress.ts";
import type { Output } from "./output.ts";

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
    const seconds = Math.max((now - state.started) / 1000, 0.001);
    const rate = event.done / seconds;
    const etaSeconds =
      event.total !== undefined && rate > 0 ? Math.max(0, (event.total - event.done) / rate) : undefined;
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
        task: event.task.padEnd(24).slice(0, 24),
        unit: event.unit,
        rate: formatRate(rate),
        etaText: etaSeconds === undefined ? "?" : `${Math.ceil(etaSeconds)}s`,
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
    line.ratePerSecond = Math.round(rate);
    if (etaSeconds !== undefined) line.etaSeconds = Math.round(etaSeconds);
    if (event.finished) line.finished = true;
    this.out.stderr.write(`${JSON.stringify(line)}\n`);
  };

  stop(): void {
    this.multibar?.stop();
    this.multibar = undefined;
  }
}
