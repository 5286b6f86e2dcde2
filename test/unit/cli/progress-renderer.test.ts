import assert from "node:assert/strict";
import { test } from "node:test";
import { Output } from "../../../src/cli/output.ts";
import { ProgressRenderer } from "../../../src/cli/progress-renderer.ts";
import type { ProgressEvent } from "../../../src/progress.ts";
import { FakeTerminal } from "./fake-terminal.ts";

// The renderer draws bars only on a terminal that can move the cursor (not TERM=dumb, as some CI sets).
process.env.TERM = "xterm-256color";

function captured(json: boolean): { out: Output; text: () => string } {
  let text = "";
  const stream = {
    isTTY: false,
    write: (chunk: string) => ((text += chunk), true),
  } as unknown as NodeJS.WriteStream;
  return { out: new Output({ json, stdout: stream, stderr: stream }), text: () => text };
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A clock the test moves. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test("with --json, progress is JSON lines, throttled, with the final line always written", () => {
  const { out, text } = captured(true);
  const renderer = new ProgressRenderer(out, { intervalMs: 60_000 });
  renderer.onProgress({ task: "users", done: 0, total: 1000, unit: "rows" });
  renderer.onProgress({ task: "users", done: 500, total: 1000, unit: "rows" });
  renderer.onProgress({ task: "users", done: 1000, total: 1000, unit: "rows", finished: true });
  const written = jsonLines(text());
  assert.equal(written.length, 2);
  assert.deepEqual(written[0], { event: "progress", task: "users", done: 0, unit: "rows", total: 1000 });
  assert.equal(written[1]!.finished, true);
  assert.equal(written[1]!.done, 1000);
});

test("with --json, job lines carry scope, phase and an ETA that counts the work after the phase", () => {
  const { out, text } = captured(true);
  const time = clock();
  const renderer = new ProgressRenderer(out, { intervalMs: 0, now: time.now });
  renderer.onProgress({
    task: "import",
    scope: "job",
    phase: "data",
    done: 0,
    total: 1000,
    after: 1000,
    unit: "rows",
  });
  time.advance(2_000);
  renderer.onProgress({
    task: "import",
    scope: "job",
    phase: "data",
    done: 500,
    total: 1000,
    after: 1000,
    unit: "rows",
  });
  const [first, second] = jsonLines(text());
  assert.deepEqual(first, {
    event: "progress",
    task: "import",
    done: 0,
    unit: "rows",
    total: 1000,
    scope: "job",
    phase: "data",
    after: 1000,
  });
  // 250 rows/s; 500 rows of the load and 1000 of the verification left.
  assert.equal(second!.ratePerSecond, 250);
  assert.equal(second!.etaSeconds, 6);
});

test("no rate or ETA is invented from a few milliseconds of work", () => {
  const { out, text } = captured(true);
  const renderer = new ProgressRenderer(out, { intervalMs: 0 });
  renderer.onProgress({ task: "tiny", done: 2880, total: 2880, unit: "rows", finished: true });
  const [line] = jsonLines(text());
  assert.equal(line!.ratePerSecond, undefined);
  assert.equal(line!.etaSeconds, undefined);
});

test("without a terminal and without --json, progress is plain lines: the overall one every few seconds, one per finished table", () => {
  const { out, text } = captured(false);
  const time = clock();
  const renderer = new ProgressRenderer(out, { intervalMs: 5_000, now: time.now });
  const job = (done: number): ProgressEvent => ({
    task: "import",
    scope: "job",
    phase: "data",
    done,
    total: 3000,
    after: 3000,
    unit: "rows",
  });
  renderer.onProgress(job(0));
  for (let done = 100; done <= 1000; done += 100) {
    time.advance(400);
    renderer.onProgress({ task: "users", done, total: 1000, unit: "rows", finished: done === 1000 });
    renderer.onProgress({ task: "orders", done: done * 2, total: 2000, unit: "rows" });
    renderer.onProgress(job(done * 3));
  }
  time.advance(2_000);
  renderer.onProgress({ task: "orders", done: 2000, total: 2000, unit: "rows", finished: true });
  renderer.onProgress(job(3000));
  renderer.stop();
  assert.equal(
    text(),
    [
      "[0:00] import data: 0/3,000 rows (0%)",
      "[0:04] users: 1,000 rows; done in 3.6s",
      "[0:06] orders: 2,000 rows; done in 5.6s",
      "[0:06] import data: 3,000/3,000 rows (100%), 500 rows/s, ETA 6s",
      "",
    ].join("\n"),
  );
  assert.doesNotMatch(text(), /[{}]/);
});

/** Feeds the renderer what a `tables`-table import with `jobs` lanes and `workers` verification workers sends. */
function simulateImport(
  renderer: ProgressRenderer,
  time: { advance: (ms: number) => void },
  options: { tables: number; jobs: number; workers: number; rows: number; onFrame: () => void },
): void {
  const { tables, jobs, workers, rows } = options;
  const total = tables * rows;
  const send = (event: ProgressEvent) => {
    renderer.onProgress(event);
    time.advance(50);
    renderer.redraw();
    options.onFrame();
  };
  send({ task: "import", scope: "job", phase: "data", done: 0, total, after: total, unit: "rows" });
  let loaded = 0;
  const lanes = (names: string[], width: number, job: (done: number) => ProgressEvent) => {
    for (let first = 0; first < names.length; first += width) {
      const batch = names.slice(first, first + width);
      for (const step of [1, 2, 3, 4]) {
        for (const name of batch) {
          const done = (rows * step) / 4;
          send({ task: name, done, total: rows, unit: "rows", ...(step === 4 ? { finished: true } : {}) });
          loaded += rows / 4;
          send(job(loaded));
        }
      }
    }
  };
  const names = Array.from({ length: tables }, (_, i) => `table_${String(i).padStart(3, "0")}`);
  lanes(names, jobs, (done) => ({
    task: "import",
    scope: "job",
    phase: "data",
    done,
    total,
    after: total,
    unit: "rows",
  }));
  for (const phase of ["keys", "indexes", "constraints", "views", "analyze"])
    send({ task: "import", scope: "job", phase, done: total, total, after: total, unit: "rows" });
  loaded = 0;
  send({ task: "verify", scope: "job", phase: "verify", done: 0, total, unit: "rows" });
  lanes(
    names.map((n) => `verify ${n}`),
    workers,
    (done) => ({ task: "verify", scope: "job", phase: "verify", done, total, unit: "rows" }),
  );
}

test("a 100-table import on a terminal: one overall bar plus the tables in flight, never more", () => {
  const terminal = new FakeTerminal(100);
  const out = new Output({ json: false, stdout: terminal.asStream(), stderr: terminal.asStream() });
  const time = clock();
  const renderer = new ProgressRenderer(out, { now: time.now });
  const jobs = 4;
  const workers = 2;
  renderer.setMaxItems(jobs + workers);
  let widest = 0;
  let frames = 0;
  simulateImport(renderer, time, {
    tables: 100,
    jobs,
    workers,
    rows: 1000,
    onFrame: () => {
      frames++;
      for (const line of terminal.screen()) widest = Math.max(widest, line.length);
    },
  });
  const during = terminal.maxLinesShown;
  renderer.stop();
  assert.ok(frames > 1000);
  // The overall bar and the four tables loading at once, at most.
  assert.equal(during, 1 + jobs);
  assert.ok(during <= jobs + workers + 1);
  assert.ok(widest < 100, `a line of ${widest} characters on a 100-column terminal`);
  // Finished tables left the display: only the overall line remains.
  const left = terminal.screen();
  assert.equal(left.length, 1, left.join("\n"));
  // The last frame: how long the job took, instead of a rate and an ETA.
  assert.equal(left[0], `import${" ".repeat(19)}▕${"█".repeat(24)}▏100%  verify  100k/100k rows  in 1m21s`);
});

test("more items in flight than bars: the rest are counted on the overall line", () => {
  const terminal = new FakeTerminal(80);
  const out = new Output({ json: false, stdout: terminal.asStream(), stderr: terminal.asStream() });
  const time = clock();
  const renderer = new ProgressRenderer(out, { now: time.now });
  renderer.setMaxItems(2);
  renderer.onProgress({ task: "verify", scope: "job", phase: "verify", done: 0, total: 5000, unit: "rows" });
  for (const name of ["a", "b", "c", "d", "e"])
    renderer.onProgress({ task: name, done: 0, total: 1000, unit: "rows" });
  time.advance(2_000);
  renderer.onProgress({ task: "a", done: 500, total: 1000, unit: "rows" });
  renderer.onProgress({
    task: "verify",
    scope: "job",
    phase: "verify",
    done: 500,
    total: 5000,
    unit: "rows",
  });
  renderer.redraw();
  assert.deepEqual(terminal.screen(), [
    "verify           ▕██░░░░░░░░░░░░░▏ 10%  500/5.0k rows  250/s  ETA 18s  +3 more",
    "  a              ▕████████░░░░░░░▏ 50%  500/1.0k rows  250/s  ETA 2s",
    "  b              ▕░░░░░░░░░░░░░░░▏  0%  0/1.0k rows  ETA ?",
  ]);
  // "a" finishes: it leaves, "c" takes its place.
  renderer.onProgress({ task: "a", done: 1000, total: 1000, unit: "rows", finished: true });
  renderer.redraw();
  const screen = terminal.screen();
  assert.equal(screen.length, 3);
  assert.match(screen[0]!, /\+2 more$/);
  assert.deepEqual(
    screen.slice(1).map((l) => l.trim().split(" ")[0]),
    ["b", "c"],
  );
  renderer.stop();
  assert.equal(terminal.screen().length, 1);
});
