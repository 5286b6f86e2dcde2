import { ConnectionError } from "./errors.ts";

export type BreakerState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
  /** Consecutive connection failures that open the breaker (default 5). */
  failureThreshold?: number;
  /** How long the breaker stays open before one probe is let through (default 2000 ms). */
  coolDownMs?: number;
  /** Where the breaker points, for its error messages. */
  host?: string;
  port?: number;
  /** Injected for tests; defaults to Date.now. */
  now?: () => number;
}

/** What the breaker counted. Counters only grow. */
export interface BreakerMetrics {
  state: BreakerState;
  /** Checkouts let through (each may reuse an idle connection or open one). */
  admitted: number;
  /** Checkouts that failed with a connection error. */
  connectFailures: number;
  /** Checkouts refused at once because the breaker was open. */
  rejected: number;
  /** Times the breaker went from closed or half-open to open. */
  opened: number;
  consecutiveFailures: number;
  /** When the next probe may run (epoch ms), while open. */
  nextProbeAt?: number;
}

/** A checkout refused without trying: the breaker is open after repeated connection failures. */
export class CircuitOpenError extends ConnectionError {
  readonly nextProbeAt: Date;

  /** `lastFailure`: the connection error that opened it (the `cause`), what a one-shot command reports. */
  constructor(host: string, port: number, nextProbeAt: number, failures: number, lastFailure?: unknown) {
    const at = new Date(nextProbeAt);
    super(
      `not connecting to ${host}:${port}: the circuit breaker is open after ${failures} consecutive connection failures; next probe at ${at.toISOString()}`,
      lastFailure,
      { host, port, nextProbeAt: at.toISOString(), failures },
      "circuit_open",
    );
    this.nextProbeAt = at;
  }
}

/**
 * Closed: every attempt goes through; N consecutive failures open it. Open: attempts fail fast with a
 * CircuitOpenError until the cool-down ends. Half-open: exactly one probe goes through (the others still
 * fail fast); its success closes the breaker, its failure opens it for another cool-down.
 */
export class CircuitBreaker {
  private state: BreakerState = "closed";
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  private lastFailure: unknown;
  private readonly counters = { admitted: 0, connectFailures: 0, rejected: 0, opened: 0 };
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions = {}) {
    this.threshold = Math.max(1, options.failureThreshold ?? 5);
    this.coolDownMs = Math.max(0, options.coolDownMs ?? 2_000);
    this.now = options.now ?? Date.now;
  }

  /** Lets one attempt through or throws CircuitOpenError; every admitted attempt must be settled. */
  admit(): void {
    if (this.state === "open" && this.now() >= this.openedAt + this.coolDownMs) this.state = "half-open";
    if (this.state === "open" || (this.state === "half-open" && this.probing)) {
      this.counters.rejected += 1;
      throw new CircuitOpenError(
        this.options.host ?? "localhost",
        this.options.port ?? 5432,
        this.state === "open" ? this.openedAt + this.coolDownMs : this.now() + this.coolDownMs,
        this.consecutive,
        this.lastFailure,
      );
    }
    if (this.state === "half-open") this.probing = true;
    this.counters.admitted += 1;
  }

  /** The admitted attempt reached the server (even an authentication error proves it is up). */
  succeeded(): void {
    this.state = "closed";
    this.consecutive = 0;
    this.lastFailure = undefined;
    this.probing = false;
  }

  /** The admitted attempt failed for a reason that says nothing about the server (a full pool's queue timeout). */
  released(): void {
    this.probing = false;
  }

  /** The admitted attempt failed with a connection error. */
  failed(error?: unknown): void {
    this.lastFailure = error;
    this.counters.connectFailures += 1;
    this.consecutive += 1;
    const wasProbe = this.state === "half-open";
    this.probing = false;
    if (wasProbe || (this.state === "closed" && this.consecutive >= this.threshold)) {
      this.state = "open";
      this.openedAt = this.now();
      this.counters.opened += 1;
    }
  }

  metrics(): BreakerMetrics {
    const open = this.state === "open";
    return {
      state: this.state,
      ...this.counters,
      consecutiveFailures: this.consecutive,
      ...(open ? { nextProbeAt: this.openedAt + this.coolDownMs } : {}),
    };
  }
}
