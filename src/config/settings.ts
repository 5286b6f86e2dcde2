import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { SettingsError } from "../errors.ts";
import { redactUrl } from "./redact.ts";

/** The file read from the working directory; keys are the same as in `Settings`. */
export const CONFIG_FILE = "pgshift.config.json";

const postgresUrl = z.string().superRefine((value, ctx) => {
  if (value !== value.trim()) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message:
        "starts or ends with whitespace (pasted with the URL?); remove it, a URL has no spaces around it",
    });
    return;
  }
  let valid = false;
  try {
    const url = new URL(value);
    valid =
      (url.protocol === "postgres:" || url.protocol === "postgresql:") &&
      value.slice(url.protocol.length).startsWith("//") &&
      (url.hostname !== "" || url.searchParams.has("host"));
  } catch {
    valid = false;
  }
  if (!valid)
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message:
        "is not a PostgreSQL URL; expected postgres://USER@HOST:PORT/DATABASE (a password may follow USER after a colon)",
    });
});

const identifier = z
  .string()
  .min(1)
  .max(63)
  .refine((s) => !s.includes("\u0000"), { message: "contains a NUL character" });

/** Every setting, its type and its documented default. */
export const settingsSchema = z
  .object({
    /** Target database URL. Absent: the managed local instance `localName`. */
    to: postgresUrl.optional(),
    /** Target schema for imported tables. */
    schema: identifier.default("public"),
    /** Parallel workers for loads, index builds and verification. */
    jobs: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(Math.max(2, Math.min(4, availableParallelism()))),
    /** lock_timeout for DDL pgshift runs, in milliseconds. */
    lockTimeoutMs: z.number().int().min(0).default(5_000),
    /** statement_timeout for pgshift's sessions, in milliseconds (0 = none). */
    statementTimeoutMs: z.number().int().min(0).default(0),
    /** Name of the managed local instance used when no target is given. */
    localName: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,40}$/, "letters, digits, '-' and '_' only")
      .default("default"),
    /** Where managed local instances keep their data. */
    localDir: z.string().min(1).default(".pgshift/local"),
    /** Where JSON reports are written. */
    reportDir: z.string().min(1).default(".pgshift/reports"),
  })
  .strict();

export type Settings = z.infer<typeof settingsSchema>;
export type RawSettings = Partial<Record<keyof Settings, unknown>>;
export type SettingSource = "flag" | "env" | "file" | "default";

export interface ResolvedSettings {
  settings: Settings;
  /** Where each set value came from. */
  sources: Partial<Record<keyof Settings, SettingSource>>;
  /** The config file that was read, if any. */
  configFile?: string;
}

/** PGSHIFT_* environment variables and the setting each one feeds. */
export const ENV_SETTINGS: Record<string, keyof Settings> = {
  PGSHIFT_TO: "to",
  PGSHIFT_DATABASE_URL: "to",
  PGSHIFT_SCHEMA: "schema",
  PGSHIFT_JOBS: "jobs",
  PGSHIFT_LOCK_TIMEOUT_MS: "lockTimeoutMs",
  PGSHIFT_STATEMENT_TIMEOUT_MS: "statementTimeoutMs",
  PGSHIFT_LOCAL_NAME: "localName",
  PGSHIFT_LOCAL_DIR: "localDir",
  PGSHIFT_REPORT_DIR: "reportDir",
};

/** PGSHIFT_* variables read elsewhere (binaries, test harness, emergency overrides); not settings, not errors. */
const ENV_OTHER = new Set([
  "PGSHIFT_PG_BIN",
  "PGSHIFT_LOCAL_USER",
  "PGSHIFT_TEST_PG",
  "PGSHIFT_REPORT_KEY",
  "PGSHIFT_KEYS",
  "PGSHIFT_DEBUG",
  "PGSHIFT_FROM_SOURCE",
]);
const ENV_OTHER_PREFIXES = ["PGSHIFT_CUTOVER_", "PGSHIFT_TEST_"];

const NUMERIC: ReadonlySet<keyof Settings> = new Set(["jobs", "lockTimeoutMs", "statementTimeoutMs"]);

/** A URL from libpq's PG* variables, when PGHOST or PGDATABASE is set. */
export function urlFromLibpqEnv(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.PGHOST && !env.PGDATABASE) return undefined;
  const user = env.PGUSER ? encodeURIComponent(env.PGUSER) : "";
  const password = env.PGPASSWORD ? `:${encodeURIComponent(env.PGPASSWORD)}` : "";
  const auth = user ? `${user}${password}@` : "";
  const host = env.PGHOST ?? "localhost";
  const params = new URLSearchParams();
  let hostPart = host;
  if (host.startsWith("/")) {
    params.set("host", host);
    hostPart = "localhost";
  }
  if (env.PGSSLMODE) params.set("sslmode", env.PGSSLMODE);
  const query = params.toString();
  return `postgres://${auth}${hostPart}:${env.PGPORT ?? "5432"}/${encodeURIComponent(env.PGDATABASE ?? env.PGUSER ?? "postgres")}${query ? `?${query}` : ""}`;
}

function fromEnv(env: NodeJS.ProcessEnv, problems: string[]): RawSettings {
  const raw: RawSettings = {};
  const libpq = urlFromLibpqEnv(env);
  if (libpq) raw.to = libpq;
  if (env.DATABASE_URL) raw.to = env.DATABASE_URL;
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("PGSHIFT_") || value === undefined) continue;
    const key = ENV_SETTINGS[name];
    if (!key) {
      if (!ENV_OTHER.has(name) && !ENV_OTHER_PREFIXES.some((p) => name.startsWith(p))) {
        problems.push(
          `environment variable ${name} is not a pgshift setting (known: ${Object.keys(ENV_SETTINGS).join(", ")})`,
        );
      }
      continue;
    }
    raw[key] = NUMERIC.has(key) ? coerceNumber(value) : value;
  }
  return raw;
}

function coerceNumber(value: string): unknown {
  return /^-?\d+$/.test(value.trim()) ? Number(value) : value;
}

function fromFile(path: string, problems: string[]): RawSettings {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    problems.push(`${path}: cannot be read (${(error as Error).message})`);
    return {};
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      problems.push(`${path}: must hold a JSON object`);
      return {};
    }
    return parsed as RawSettings;
  } catch (error) {
    // V8 quotes the start of the text in some messages ("{"to": "postgres://u:pw..."), and a cut-off URL
    // cannot be redacted: keep only the position.
    const reason = (error as Error).message.replace(/^(.*?), ".*" is not valid JSON$/s, "$1");
    problems.push(`${path}: is not valid JSON (${reason})`);
    return {};
  }
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(redactUrl(value)) : JSON.stringify(value);
}

export interface LoadSettingsInput {
  /** Values from command-line flags; undefined entries are ignored. */
  flags?: RawSettings;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** An explicit config file (`--config`); by default pgshift.config.json in cwd if present. */
  configFile?: string;
}

/**
 * Loads settings from flags > environment > pgshift.config.json > defaults, then validates them once.
 * Every problem is reported together in one SettingsError; values in messages are redacted.
 */
export function loadSettings(input: LoadSettingsInput = {}): ResolvedSettings {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const problems: string[] = [];
  const filePath = input.configFile ?? join(cwd, CONFIG_FILE);
  const fileExists = input.configFile !== undefined || existsSync(filePath);
  const layers: [SettingSource, RawSettings][] = [
    ["file", fileExists ? fromFile(filePath, problems) : {}],
    ["env", fromEnv(env, problems)],
    ["flag", Object.fromEntries(Object.entries(input.flags ?? {}).filter(([, v]) => v !== undefined))],
  ];
  const merged: Record<string, unknown> = {};
  const sources: ResolvedSettings["sources"] = {};
  for (const [source, layer] of layers) {
    for (const [key, value] of Object.entries(layer)) {
      merged[key] = value;
      sources[key as keyof Settings] = source;
    }
  }
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) problems.push(`unknown setting "${key}" in ${filePath}`);
        continue;
      }
      const key = String(issue.path[0] ?? "");
      const from = sources[key as keyof Settings];
      const where =
        from === "file"
          ? filePath
          : from === "env"
            ? "environment"
            : from === "flag"
              ? "command line"
              : "default";
      problems.push(`${key} = ${describe(merged[key])} (from ${where}): ${issue.message}`);
    }
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return { settings: parsed.data!, sources, ...(fileExists ? { configFile: filePath } : {}) };
}

/** Settings safe to print: the target URL redacted. */
export function redactSettings(settings: Settings): Settings {
  return settings.to ? { ...settings, to: redactUrl(settings.to) } : settings;
}
