import { PgshiftError } from "../errors.ts";

/** A backup, restore or drill step failed; `step` names which, `details` carry what a caller needs. */
export class BackupError extends PgshiftError {
  readonly step: string;

  constructor(
    step: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(`backup_${step}`, message, { ...options, details: { step, ...options.details } });
    this.step = step;
  }
}

/** A restore target outside what the repository can recover; `window` says what it can. */
export class RecoveryWindowError extends PgshiftError {
  readonly window: { earliest: string; latest: string | undefined };

  constructor(message: string, window: { earliest: string; latest: string | undefined }) {
    super("backup_target_outside_window", message, { exitCode: 2, details: { window } });
    this.window = window;
  }
}
