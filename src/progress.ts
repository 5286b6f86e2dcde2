/**
 * Progress flows out of the library as events; the library never renders it. The CLI draws bars on a
 * terminal and JSON lines otherwise; the metrics endpoint reads the same events.
 */
export interface ProgressEvent {
  /** What is progressing, e.g. a table name or "verify". */
  task: string;
  done: number;
  /** Unknown totals are left out; renderers then show a count and rate without ETA. */
  total?: number;
  unit: string;
  /** The task has finished (successfully or not). */
  finished?: boolean;
}

export type ProgressCallback = (event: ProgressEvent) => void;

/** A logger the library may be given; silent by default. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined };
