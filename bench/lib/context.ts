import type { GeneratedDocuments } from "../generate-documents.ts";
import type { GeneratedSqlite } from "../generate-sqlite.ts";
import type { BenchArgs } from "./args.ts";
import type { BenchInstance } from "./instance.ts";
import type { ScenarioResult } from "./result.ts";

/** What the pgshift SQLite import left behind for later scenarios (verify reuses it). */
export interface SqliteImportRun {
  sqlite: GeneratedSqlite;
  database: string;
  url: string;
  /** Wall time of `pgshift import` in the sqlite scenario. */
  importWallMs: number;
  /** Whether that import ran its own verification at the end. */
  importVerified: boolean;
  /** pgloader's wall time on the same file in the same run, when it completed. */
  pgloaderWallMs?: number;
}

export interface BenchContext {
  args: BenchArgs;
  mode: "quick" | "full";
  repoRoot: string;
  /** Scratch space for generated data (removed at the end unless --keep). */
  workDir: string;
  instance: BenchInstance;
  /** Parallel workers given to every contender that has such a knob. */
  jobs: number;
  log(message: string): void;
  sqliteImport?: SqliteImportRun;
  documents?: GeneratedDocuments;
  /** Database holding the pgshift-imported document table for the queries scenario. */
  documentTable?: {
    url: string;
    schema: string;
    table: string;
    keyColumn: string;
    loadedBy: string;
  };
}

export type Scenario = (ctx: BenchContext) => Promise<ScenarioResult>;
