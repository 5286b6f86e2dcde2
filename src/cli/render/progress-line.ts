/** Pure text pieces of the progress display: numbers, durations, bars and whole lines. */
import { escapeControl } from "../terminal-text.ts";

/** 1234 -> "1.2k", 2_400_000 -> "2.4M": for bars, where width matters more than the last digit. */
export function compactNumber(n: number): string {
  if (n >= 1_000_000_000) return `${(n / 1_000_000_000).toFixed(1)}G`;
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)}M`;
  if (n >= 10_000) return `${Math.round(n / 1_000)}k`;
  if (n >= 1_000) return `${(n / 1_000).toFixed(1)}k`;
  return String(Math.round(n));
}

/** 1204000 -> "1,204,000": for log lines, where the exact figure is worth its width. */
export function exactNumber(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Seconds -> "14s", "3m05s", "1h02m". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Elapsed time as a log line prefix: "0:05", "12:40", "1:02:03". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** A bar of `width` cells; an unknown total draws a blank one (not an empty one, which would read as 0%). */
export function bar(done: number, total: number | undefined, width: number): string {
  if (total === undefined) return " ".repeat(width);
  const fraction = total ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.round(fraction * width);
  return `${"█".repeat(full)}${"░".repeat(width - full)}`;
}

export function percent(done: number, total: number | undefined): string {
  if (!total) return total === 0 ? "100%" : "";
  return `${Math.min(100, Math.floor((done / total) * 100))}%`;
}

/** What one line of the display says: a name, figures, and the rate and ETA when they are known. */
export interface LineFigures {
  label: string;
  /** Shown after the label on the overall line ("data", "indexes", "verify"). */
  phase?: string;
  done: number;
  total?: number;
  unit: string;
  /** Per second; undefined while too little time has passed to measure. */
  rate?: number;
  etaSeconds?: number;
  /** Set on the last frame: how long the whole job took (replaces rate and ETA). */
  elapsedSeconds?: number;
  /** Extra words at the end ("+3 more"). */
  tail?: string;
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** Column widths of the live display for a terminal this wide: every line's bar starts and ends at the same column. */
export function layout(columns: number): { columns: number; labelWidth: number; barWidth: number } {
  const labelWidth = columns >= 100 ? 22 : 14;
  const barWidth = Math.max(8, Math.min(24, columns - 1 - (labelWidth + 2) - 2 - 46));
  return { columns, labelWidth, barWidth };
}

/**
 * One line of the live display, at most `columns - 1` characters (a line that fills the last column
 * makes some terminals wrap, and the display would then grow by a line per redraw). Items are indented
 * under the overall line.
 */
export function terminalLine(
  f: LineFigures,
  options: { columns: number; labelWidth: number; barWidth: number; item?: boolean },
): string {
  const indent = options.item ? "  " : "";
  const label = cut(escapeControl(f.label), options.labelWidth + (options.item ? 0 : 2)).padEnd(
    options.labelWidth + (options.item ? 0 : 2),
  );
  const parts: string[] = [];
  if (f.phase) parts.push(f.phase);
  // A phase that has not counted anything yet (planning) shows its name only.
  if (f.total !== undefined || f.done > 0)
    parts.push(
      `${compactNumber(f.done)}${f.total !== undefined ? `/${compactNumber(f.total)}` : ""} ${f.unit}`,
    );
  if (f.rate !== undefined) parts.push(`${compactNumber(f.rate)}/s`);
  if (f.elapsedSeconds !== undefined) parts.push(`in ${duration(f.elapsedSeconds)}`);
  else if (f.etaSeconds !== undefined) parts.push(`ETA ${duration(f.etaSeconds)}`);
  else if (f.total !== undefined && f.done < f.total) parts.push("ETA ?");
  if (f.tail) parts.push(f.tail);
  const figures = `${percent(f.done, f.total).padStart(4)}  ${parts.join("  ")}`;
  return cut(
    `${indent}${label} ▕${bar(f.done, f.total, options.barWidth)}▏${figures}`,
    Math.max(20, options.columns - 1),
  );
}

/** One plain log line (no terminal): `[0:05] import data: 1,204,000/2,400,000 rows (50%), 310k rows/s, ETA 14s`. */
export function logLine(elapsedSeconds: number, f: LineFigures): string {
  const figures: string[] = [];
  if (f.total !== undefined || f.done > 0)
    figures.push(
      `${exactNumber(f.done)}${f.total !== undefined ? `/${exactNumber(f.total)}` : ""} ${f.unit}${f.total ? ` (${percent(f.done, f.total)})` : ""}`,
    );
  if (f.rate !== undefined) figures.push(`${compactNumber(f.rate)} ${f.unit}/s`);
  if (f.etaSeconds !== undefined) figures.push(`ETA ${duration(f.etaSeconds)}`);
  const name = escapeControl(f.phase ? `${f.label} ${f.phase}` : f.label);
  const text = [figures.join(", "), f.tail].filter(Boolean).join("; ");
  return `[${clock(elapsedSeconds)}] ${name}${text ? `: ${text}` : ""}`;
}
