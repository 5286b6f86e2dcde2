/**
 * The `ramp` bench scenario on its own, printing its JSON:
 *
 *   node bin/run-ts.js bench/ramp-load.ts [--rate 1000] [--seconds 60] [--keys 10000]
 */
import { destroyBenchInstance, startBenchInstance } from "./lib/instance.ts";
import { runRampLoad } from "./lib/ramp-load.ts";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const instance = await startBenchInstance();
try {
  const result = await runRampLoad({
    adminUrl: instance.adminUrl,
    rate: flag("rate", 1000),
    seconds: flag("seconds", 60),
    keys: flag("keys", 10_000),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await destroyBenchInstance(instance);
}
