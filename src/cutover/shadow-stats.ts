import { type ValueDiff, diffValues, canonicalValue } from "./canonical-json.ts";

export interface ShadowMismatchSample {
  method: string;
  key: string | null;
  /** The values as each side returned them (canonical JSON form). */
  legacy: unknown;
  next: unknown;
  /** JSON pointers of the differing members. */
  diff: ValueDiff[];
  at: string;
}

export interface ShadowErrorSample {
  method: string;
  key: string | null;
  side: "legacy" | "next";
  error: string;
  at: string;
}

export interface ShadowCounts {
  /** Shadow reads started. */
  started: number;
  matched: number;
  mismatched: number;
  /** First comparison differed, a re-read of both sides agreed: a write raced the read, not a divergence. */
  raced: number;
  /** The shadow side threw. */
  errors: number;
  /** Not run because too many shadow reads were in flight (bounded memory and load). */
  skipped: number;
}

/** Counters and bounded samples of shadow comparisons. */
export class ShadowStats {
  readonly counts: ShadowCounts = {
    started: 0,
    matched: 0,
    mismatched: 0,
    raced: 0,
    errors: 0,
    skipped: 0,
  };
  private readonly mismatches: ShadowMismatchSample[] = [];
  private readonly errorSamples: ShadowErrorSample[] = [];

  constructor(private readonly sampleSize = 20) {}

  mismatch(method: string, key: string | undefined, legacy: unknown, next: unknown): void {
    this.counts.mismatched++;
    push(this.mismatches, mismatchSample(method, key, legacy, next), this.sampleSize);
  }

  error(method: string, key: string | undefined, side: "legacy" | "next", error: unknown): void {
    this.counts.errors++;
    push(
      this.errorSamples,
      {
        method,
        key: key ?? null,
        side,
        error: error instanceof Error ? error.message : String(error),
        at: new Date().toISOString(),
      },
      this.sampleSize,
    );
  }

  snapshot(): {
    counts: ShadowCounts;
    mismatchRate: number;
    mismatches: ShadowMismatchSample[];
    errors: ShadowErrorSample[];
  } {
    const compared = this.counts.matched + this.counts.mismatched + this.counts.raced;
    return {
      counts: { ...this.counts },
      mismatchRate: compared === 0 ? 0 : this.counts.mismatched / compared,
      mismatches: [...this.mismatches],
      errors: [...this.errorSamples],
    };
  }
}

/** A sample of a mismatch; values canonical JSON cannot hold (a reference cycle) are described instead. */
function mismatchSample(
  method: string,
  key: string | undefined,
  legacy: unknown,
  next: unknown,
): ShadowMismatchSample {
  const at = new Date().toISOString();
  try {
    return {
      method,
      key: key ?? null,
      legacy: canonicalValue(legacy),
      next: canonicalValue(next),
      diff: diffValues(legacy, next),
      at,
    };
  } catch (error) {
    const why = `(not comparable: ${error instanceof Error ? error.message : String(error)})`;
    const describe = (value: unknown) => {
      try {
        return canonicalValue(value);
      } catch {
        return why;
      }
    };
    return { method, key: key ?? null, legacy: describe(legacy), next: describe(next), diff: [], at };
  }
}

/** Keeps the most recent `size` samples. */
function push<T>(list: T[], item: T, size: number): void {
  list.push(item);
  if (list.length > size) list.shift();
}
