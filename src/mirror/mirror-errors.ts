import { PgshiftError } from "../errors.ts";

/** The API answered with an error that retrying will not fix (400, 401, 403, a body that is not an envelope). */
export class ApiRequestError extends PgshiftError {
  constructor(
    message: string,
    readonly status: number,
    readonly url: string,
  ) {
    super("api_request_failed", message, { details: { status, url } });
  }
}

/** The API could not be reached or kept failing (5xx, 429, timeouts) after every retry. */
export class ApiUnavailableError extends PgshiftError {
  constructor(
    message: string,
    readonly url: string,
    readonly attempts: number,
    cause?: unknown,
  ) {
    super("api_unavailable", message, { cause, details: { url, attempts } });
  }
}

/** No tier could answer: PostgreSQL is down or refused, the cache lacks the key, the API failed. */
export class MirrorUnavailableError extends PgshiftError {
  constructor(
    message: string,
    readonly tierErrors: Record<string, string>,
    cause?: unknown,
  ) {
    super("mirror_unavailable", message, { cause, details: { tiers: tierErrors } });
  }
}

/** A pull's state file does not belong to this pull (another endpoint or search) or cannot be read. */
export class PullStateError extends PgshiftError {
  constructor(
    message: string,
    readonly stateFile: string,
  ) {
    super("pull_state_invalid", message, { details: { stateFile } });
  }
}
