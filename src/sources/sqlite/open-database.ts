import Database from "better-sqlite3";
import { PgshiftError } from "../../errors.ts";

/**
 * better-sqlite3's compiled module (better_sqlite3.node) is missing or does not load: its install script
 * did not run (npm 11 asks to approve install scripts; `--ignore-scripts`), or it was built for another
 * Node.js version. The message says what to run.
 */
export class NativeModuleError extends PgshiftError {
  readonly module: string;

  constructor(module: string, cause: unknown) {
    super(
      "native_module_missing",
      `the native module of ${module} is not built for this Node.js, so SQLite files cannot be read ` +
        `(${reason(cause)}). Approve its install script and build it: ` +
        `\`npm approve-scripts ${module} && npm rebuild ${module}\` ` +
        `(pnpm: \`pnpm approve-builds\`; after a Node.js upgrade: \`npm rebuild ${module}\`)`,
      { cause, details: { module } },
    );
    this.module = module;
  }
}

function reason(cause: unknown): string {
  const message = String((cause as Error).message);
  // bindings lists every path it tried; where it looked is not what the user needs.
  if (message.includes("Could not locate the bindings file")) return "no better_sqlite3.node was found";
  return message.split("\n")[0] ?? message;
}

/** The failures of loading a compiled addon, as opposed to opening a file: bindings' search, dlopen, ABI. */
function isAddonLoadFailure(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === "ERR_DLOPEN_FAILED") return true;
  return (
    typeof message === "string" &&
    (message.includes("Could not locate the bindings file") ||
      message.includes("NODE_MODULE_VERSION") ||
      message.includes("better_sqlite3.node"))
  );
}

/**
 * Opens a SQLite file read-only through better-sqlite3: the one place its native module is loaded
 * (on the first open), so a missing build is reported as a NativeModuleError, whatever opened the file.
 */
export function openSqliteFile(path: string): Database.Database {
  try {
    return new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    if (isAddonLoadFailure(error)) throw new NativeModuleError("better-sqlite3", error);
    throw error;
  }
}
