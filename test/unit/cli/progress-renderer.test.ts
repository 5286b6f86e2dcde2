import assert from "node:assert/strict";
import { test } from "node:test";
import { Output } from "../../../src/cli/output.ts";
import { ProgressRenderer } from "../../../src/cli/progress-renderer.ts";

function captured(): { out: Output; lines: () => Record<string, unknown>[] } {
  let text = "";
  const stream = {
    isTTY: false,
    write: (chunk: string) => ((text += chunk), true),
  } as unknown as NodeJS.WriteStream;
  const out = new Output({ json: false, stdout: stream, stderr: stream });
  return {
    out,
    lines: () =>
      text
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

test("without a terminal, progress is JSON lines, throttled, with the final line always written", () => {
  const { out, lines } = captured();
  const renderer = new ProgressRenderer(out, 60_000);
  renderer.onProgress({ task: "users", done: 0, total: 1000, unit: "rows" });
  renderer.onProgress({ task: "users", done: 500, total: 1000, unit: "rows" });
  renderer.onProgress({ task: "users", done: 1000, total: 1000, unit: "rows", finished: true });
  const written = lines();
  assert.equal(written.length, 2);
  assert.deepEqual(written[0], { event: "progress", task: "users", done: 0, unit: "rows", total: 1000 });
  assert.equal(written[1]!.finished, true);
  assert.equal(written[1]!.done, 1000);
});

test("no rate or ETA is invented from a few milliseconds of work", () => {
  const { out, lines } = captured();
  const renderer = new ProgressRenderer(out, 0);
  renderer.onProgress({ task: "tiny", done: 2880, total: 2880, unit: "rows", finished: true });
  const [line] = lines();
  assert.equal(line!.ratePerSecond, undefined);
  assert.equal(line!.etaSeconds, undefined);
});
