import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import type { ProgressCallback } from "../progress.ts";
import { type ValueDiff, diffValues, canonicalValue } from "./canonical-json.ts";
import type { CutoverSide } from "./phases.ts";
import { type CutoverKeyAccess, syncCutoverKey } from "./repair-ledger.ts";

export interface CutoverVerifyOptions {
  /** Keys to compare; default: every key of both sides (needs keyAccess.keys). */
  keys?: Iterable<string> | AsyncIterable<string>;
  /** Compare a uniform random sample of this many keys instead of all. */
  sample?: number;
  /**
   * Before counting a key as divergent, wait this long and read both sides again (default 100 ms): a
   * live dual write caught between its two halves is not a divergence. 0 disables the re-read.
   */
  recheckDelayMs?: number;
  /** Copy the authoritative side's value over each divergent key, then compare again. */
  repair?: boolean;
  /** Keys compared at once (default 8). */
  concurrency?: number;
  /** Divergent keys kept as samples with both values and a diff (default 20). */
  samples?: number;
  onProgress?: ProgressCallback;
}

export interface CutoverVerifySample {
  key: string;
  kind: "mismatch" | "missing-in-next" | "missing-in-legacy" | "error";
  legacy?: unknown;
  next?: unknown;
  diff?: ValueDiff[];
  error?: string;
  repaired?: boolean;
}

export interface CutoverVerifyResult {
  id: number;
  cutover: string;
  phase: string;
  mode: "full" | "sample" | "keys";
  keysChecked: number;
  matched: number;
  /** Keys whose values differ, including those missing on one side. */
  mismatched: number;
  missingInNext: number;
  missingInLegacy: number;
  errors: number;
  /** Keys that differed at first and agreed when read again (a write was in flight): counted as matched. */
  transient: number;
  /** mismatched / keysChecked (0 when nothing was checked). */
  mismatchRate: number;
  repaired: number;
  samples: CutoverVerifySample[];
  startedAt: string;
  finishedAt: string;
}

async function* allKeys<T>(access: CutoverKeyAccess<T>, legacy: T, next: T): AsyncIterable<string> {
  const seen = new Set<string>();
  for await (const key of access.keys!(legacy)) {
    seen.add(key);
    yield key;
  }
  for await (const key of access.keys!(next)) if (!seen.has(key)) yield key;
}

/** Algorithm R: a uniform sample of `size` keys in one pass. */
async function sampleKeys(keys: AsyncIterable<string> | Iterable<string>, size: number): Promise<string[]> {
  const out: string[] = [];
  let seen = 0;
  for await (const key of keys) {
    seen++;
    if (out.length < size) out.push(key);
    else {
      const j = Math.floor(Math.random() * seen);
      if (j < size) out[j] = key;
    }
  }
  return out;
}

const absent = (v: unknown) => v === undefined || v === null;

/**
 * Reads each key from both sides and compares them; the result (counts, rate, samples) is stored in
 * pgshift.cutover_verifications so `pgshift cutover verify NAME` can report it from anywhere.
 */
export async function runCutoverVerify<T>(input: {
  pool: pg.Pool;
  cutover: string;
  phase: string;
  legacy: T;
  next: T;
  access: CutoverKeyAccess<T>;
  compare: (legacy: unknown, next: unknown, key: string) => boolean;
  authoritative: CutoverSide;
  options: CutoverVerifyOptions;
}): Promise<CutoverVerifyResult> {
  const { access, options } = input;
  const startedAt = new Date().toISOString();
  if (!options.keys && !access.keys)
    throw new Error(`cutover ${input.cutover}: verify() without keys needs keyAccess.keys to list every key`);
  const source = options.keys ?? allKeys(access, input.legacy, input.next);
  const keys = options.sample !== undefined ? await sampleKeys(source, options.sample) : source;
  const mode = options.sample !== undefined ? "sample" : options.keys ? "keys" : "full";
  const sampleLimit = options.samples ?? 20;
  const result: CutoverVerifyResult = {
    id: 0,
    cutover: input.cutover,
    phase: input.phase,
    mode,
    keysChecked: 0,
    matched: 0,
    mismatched: 0,
    missingInNext: 0,
    missingInLegacy: 0,
    errors: 0,
    transient: 0,
    mismatchRate: 0,
    repaired: 0,
    samples: [],
    startedAt,
    finishedAt: startedAt,
  };
  const stores = { legacy: input.legacy, next: input.next };
  const other: CutoverSide = input.authoritative === "legacy" ? "next" : "legacy";

  const check = async (key: string) => {
    let legacyValue: unknown;
    let nextValue: unknown;
    try {
      [legacyValue, nextValue] = await Promise.all([
        access.read(input.legacy, key),
        access.read(input.next, key),
      ]);
    } catch (error) {
      result.keysChecked++;
      result.errors++;
      if (result.samples.length < sampleLimit)
        result.samples.push({
          key,
          kind: "error",
          error: error instanceof Error ? error.message : String(error),
        });
      return;
    }
    result.keysChecked++;
    const agree = (a: unknown, b: unknown) =>
      (absent(a) && absent(b)) || (!absent(a) && !absent(b) && input.compare(a, b, key));
    if (agree(legacyValue, nextValue)) {
      result.matched++;
      return;
    }
    const recheckDelayMs = options.recheckDelayMs ?? 100;
    if (recheckDelayMs > 0) {
      await sleep(recheckDelayMs);
      try {
        [legacyValue, nextValue] = await Promise.all([
          access.read(input.legacy, key),
          access.read(input.next, key),
        ]);
      } catch (error) {
        result.errors++;
        if (result.samples.length < sampleLimit)
          result.samples.push({
            key,
            kind: "error",
            error: error instanceof Error ? error.message : String(error),
          });
        return;
      }
      if (agree(legacyValue, nextValue)) {
        result.matched++;
        result.transient++;
        return;
      }
    }
    result.mismatched++;
    const kind = absent(nextValue)
      ? "missing-in-next"
      : absent(legacyValue)
        ? "missing-in-legacy"
        : "mismatch";
    if (kind === "missing-in-next") result.missingInNext++;
    if (kind === "missing-in-legacy") result.missingInLegacy++;
    const sample: CutoverVerifySample = {
      key,
      kind,
      legacy: canonicalValue(legacyValue),
      next: canonicalValue(nextValue),
      diff: diffValues(legacyValue, nextValue),
    };
    if (options.repair) {
      try {
        await syncCutoverKey(access, stores[input.authoritative], stores[other], key);
        const [a, b] = await Promise.all([access.read(input.legacy, key), access.read(input.next, key)]);
        if (agree(a, b)) {
          result.repaired++;
          sample.repaired = true;
        }
      } catch (error) {
        sample.error = error instanceof Error ? error.message : String(error);
      }
    }
    if (result.samples.length < sampleLimit) result.samples.push(sample);
  };

  const concurrency = Math.max(1, options.concurrency ?? 8);
  const running = new Set<Promise<void>>();
  for await (const key of keys as AsyncIterable<string>) {
    const task = check(key).finally(() => running.delete(task));
    running.add(task);
    if (running.size >= concurrency) await Promise.race(running);
    if (result.keysChecked % 500 === 0)
      options.onProgress?.({
        task: `verify ${input.cutover}`,
        done: result.keysChecked,
        unit: "keys",
      });
  }
  await Promise.all(running);
  result.mismatchRate = result.keysChecked === 0 ? 0 : result.mismatched / result.keysChecked;
  result.finishedAt = new Date().toISOString();
  options.onProgress?.({
    task: `verify ${input.cutover}`,
    done: result.keysChecked,
    unit: "keys",
    finished: true,
  });
  const { rows } = await input.pool.query(
    `insert into pgshift.cutover_verifications
       (cutover, mode, phase, keys_checked, matched, mismatched, missing_in_next, missing_in_legacy, errors, repaired, transient, samples, started_at, finished_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14) returning id`,
    [
      input.cutover,
      mode,
      input.phase,
      result.keysChecked,
      result.matched,
      result.mismatched,
      result.missingInNext,
      result.missingInLegacy,
      result.errors,
      result.repaired,
      result.transient,
      JSON.stringify(result.samples),
      startedAt,
      result.finishedAt,
    ],
  );
  result.id = Number(rows[0].id);
  return result;
}
