/** Flags of `npm run bench -- [--quick] [--scenario NAME[,NAME]] [--rows N] [--docs N] [--backup-mb N] [--keep]`. */
export interface BenchArgs {
  quick: boolean;
  /** Scenario names to run; empty = all. */
  scenarios: string[];
  /** SQLite benchmark rows (default 600k, both modes). */
  rows?: number;
  /** Documents for the ndjson and queries scenarios (default 100k). */
  docs?: number;
  /** Size of the backup scenario's database in MB (default 1024; 256 in quick mode). */
  backupMb?: number;
  /** Keep the bench instance and generated data afterwards (default: removed). */
  keep: boolean;
  /** Where results go (default bench/results). */
  outDir?: string;
}

export const SCENARIO_NAMES = [
  "sqlite",
  "sqlite-onetable",
  "verify",
  "ndjson",
  "ndjson-small",
  "queries",
  "cutover",
  "encrypted",
  "ramp",
  "refresh",
  "refresh-pgbouncer",
  "mirror",
  "audit",
  "backup",
  "offsite",
  "sqlite-5m",
  "queries-1m",
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value?.replace(/_/g, ""));
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${flag} needs a positive integer, got ${value ?? "nothing"}`);
  return n;
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { quick: false, scenarios: [], keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--quick":
        args.quick = true;
        break;
      case "--keep":
        args.keep = true;
        break;
      case "--scenario":
      case "--scenarios": {
        const names = (value() ?? "").split(",").filter(Boolean);
        for (const name of names) {
          if (!(SCENARIO_NAMES as readonly string[]).includes(name)) {
            throw new Error(`unknown scenario "${name}"; known: ${SCENARIO_NAMES.join(", ")}`);
          }
        }
        args.scenarios.push(...names);
        break;
      }
      case "--rows":
        args.rows = positiveInt("--rows", value());
        break;
      case "--docs":
        args.docs = positiveInt("--docs", value());
        break;
      case "--backup-mb":
        args.backupMb = positiveInt("--backup-mb", value());
        break;
      case "--out":
        args.outDir = value();
        break;
      default:
        throw new Error(
          `unknown flag ${arg}; flags: --quick --scenario NAME[,NAME] --rows N --docs N --backup-mb N --keep --out DIR`,
        );
    }
  }
  return args;
}
