// pgshift as an application gets it: `npm pack` (which runs `prepare`, the build), the tarball installed
// into a fresh project next to the application's own `pg`, then the library imported from JavaScript and
// type-checked from TypeScript, and the CLI run through `npx`, all from that project.
//
// What this does not prove, and why: the install runs with --ignore-scripts and offline from the npm
// cache (no registry, no compiler), so better-sqlite3's install script (prebuild download or node-gyp)
// does not run. The test first checks the message a user gets in exactly that state, then copies the
// better_sqlite3.node this checkout built (same Node.js) into the project, as `npm rebuild` would.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { createTestDatabase, useTestDatabase } from "../../helpers/database.ts";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const require = createRequire(import.meta.url);
const db = useTestDatabase("pkg");
const work = mkdtempSync(join(tmpdir(), "pgshift-package-"));
const app = join(work, "app");
let packedFiles: string[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command as a user would in a shell, without the npm_* variables `npm test` itself set. */
function run(
  command: string,
  args: readonly string[],
  cwd: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (
      !/^npm_/i.test(key) &&
      !["INIT_CWD", "DATABASE_URL", "PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPORT"].includes(key)
    )
      env[key] = value;
  }
  // npm and npx live beside this node binary; the first in PATH is the one a user's shell would find.
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ""}`;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...env, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function ok(result: Run, what: string): Run {
  assert.equal(result.code, 0, `${what} failed:\n${result.stdout}\n${result.stderr}`);
  return result;
}

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  [field: string]: unknown;
}

/**
 * The application's package-lock.json: pgshift from the tarball, and every package it (and the app's
 * own dependencies) needs at the version, URL and integrity pgshift's own lockfile pins. With it,
 * `npm ci --offline` installs from the npm cache that `npm ci` of this checkout filled; without it,
 * npm would need the registry to resolve version ranges.
 */
function applicationLock(
  tarball: string,
  integrity: string,
  dependencies: Record<string, string>,
  devDependencies: Record<string, string>,
): object {
  const repoLock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as LockEntry & {
    license: string;
    bin: Record<string, string>;
    engines: Record<string, string>;
  };
  const packages: Record<string, LockEntry> = {
    "": { name: "app", version: "1.0.0", dependencies, devDependencies },
    "node_modules/pgshift": {
      version: manifest.version,
      resolved: `file:${tarball}`,
      integrity,
      license: manifest.license,
      dependencies: manifest.dependencies,
      peerDependencies: manifest.peerDependencies,
      bin: manifest.bin,
      engines: manifest.engines,
    },
  };
  // Node's lookup: the package's own node_modules, then each parent's, then the top.
  const visit = (from: string, name: string, optional: boolean) => {
    for (let dir = from; ;) {
      const key = `${dir ? `${dir}/` : ""}node_modules/${name}`;
      const entry = repoLock.packages[key];
      if (entry) {
        if (packages[key]) return;
        const { dev: _dev, devOptional: _devOptional, peer: _peer, ...kept } = entry;
        packages[key] = kept;
        for (const dep of Object.keys(entry.dependencies ?? {})) visit(key, dep, false);
        for (const dep of Object.keys(entry.optionalDependencies ?? {})) visit(key, dep, true);
        for (const dep of Object.keys(entry.peerDependencies ?? {}))
          visit(key, dep, entry.peerDependenciesMeta?.[dep]?.optional === true);
        return;
      }
      if (!dir) break;
      const cut = dir.lastIndexOf("/node_modules/");
      dir = cut < 0 ? "" : dir.slice(0, cut);
    }
    // Platform packages of other systems are not in a Linux lockfile's tree.
    if (!optional) throw new Error(`${name} (needed by ${from || "the app"}) is not in package-lock.json`);
  };
  for (const name of Object.keys(manifest.dependencies ?? {})) visit("node_modules/pgshift", name, false);
  for (const name of [...Object.keys(dependencies), ...Object.keys(devDependencies)])
    if (name !== "pgshift") visit("", name, false);
  return { name: "app", version: "1.0.0", lockfileVersion: 3, requires: true, packages };
}

function lockedVersion(name: string): string {
  return (
    JSON.parse(readFileSync(join(repo, "node_modules", name, "package.json"), "utf8")) as { version: string }
  ).version;
}

before(
  async () => {
    // Pack a copy: `prepare` rebuilds dist/, and other test files run this checkout's dist/ meanwhile.
    const source = join(work, "source");
    mkdirSync(source);
    for (const entry of [
      "package.json",
      "package-lock.json",
      "README.md",
      "bin",
      "cjs",
      "src",
      "scripts",
      "tsconfig.json",
      "tsconfig.build.json",
    ])
      cpSync(join(repo, entry), join(source, entry), { recursive: true });
    symlinkSync(realpathSync(join(repo, "node_modules")), join(source, "node_modules"));
    const packed = ok(
      await run("npm", ["pack", "--json", "--pack-destination", work, "--loglevel=error"], source),
      "npm pack",
    );
    const [info] = JSON.parse(packed.stdout) as {
      filename: string;
      integrity: string;
      files: { path: string }[];
    }[];
    assert.ok(info);
    packedFiles = info.files.map((f) => f.path);

    mkdirSync(app);
    const dependencies = { pg: lockedVersion("pg"), pgshift: `file:../${info.filename}` };
    const devDependencies = {
      "@types/node": lockedVersion("@types/node"),
      "@types/pg": lockedVersion("@types/pg"),
    };
    writeFileSync(
      join(app, "package.json"),
      `${JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module", dependencies, devDependencies }, null, 2)}\n`,
    );
    writeFileSync(
      join(app, "package-lock.json"),
      `${JSON.stringify(applicationLock(`../${info.filename}`, info.integrity, dependencies, devDependencies), null, 2)}\n`,
    );
    ok(
      await run(
        "npm",
        ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        app,
      ),
      "npm ci of the application",
    );
  },
  { timeout: 280_000 },
);

after(() => rmSync(work, { recursive: true, force: true }));

test("the package holds compiled code and declarations: no TypeScript sources, no tests", () => {
  for (const file of [
    "bin/pgshift.js",
    "cjs/index.cjs",
    "dist/src/index.js",
    "dist/src/index.d.ts",
    "dist/src/cutover/public.js",
    "dist/src/cutover/public.d.ts",
    "dist/src/cli/main.js",
  ])
    assert.ok(packedFiles.includes(file), `${file} is not in the package`);
  const unwanted = packedFiles.filter(
    (f) =>
      f.startsWith("src/") ||
      f.startsWith("test/") ||
      /\.test\./.test(f) ||
      (f.endsWith(".ts") && !f.endsWith(".d.ts")),
  );
  assert.deepEqual(unwanted, []);
  const installed = JSON.parse(readFileSync(join(app, "node_modules", "pgshift", "package.json"), "utf8"));
  assert.deepEqual(installed.peerDependencies, { pg: "^8.11.0" });
  assert.equal(installed.dependencies.tsx, undefined);
  assert.equal(installed.dependencies.pg, undefined);
});

test("without better-sqlite3's native build, the CLI says exactly what to run", async () => {
  const target = await createTestDatabase("pkgnat");
  try {
    const result = await run(
      "npx",
      ["--offline", "pgshift", "import", join(repo, "examples/sample.db"), "--to", target.url],
      app,
    );
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /native module of better-sqlite3 is not built/);
    assert.match(result.stderr, /npm approve-scripts better-sqlite3 && npm rebuild better-sqlite3/);
  } finally {
    await target.drop();
  }
  const built = join(
    dirname(require.resolve("better-sqlite3/package.json")),
    "build/Release/better_sqlite3.node",
  );
  const release = join(app, "node_modules/better-sqlite3/build/Release");
  mkdirSync(release, { recursive: true });
  copyFileSync(built, join(release, "better_sqlite3.node"));
});

test("npx pgshift --version and an import of the sample database, from the application", async () => {
  const version = ok(await run("npx", ["--offline", "pgshift", "--version"], app), "npx pgshift --version");
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version);
  const target = await createTestDatabase("pkgcli");
  try {
    ok(
      await run(
        "npx",
        ["--offline", "pgshift", "import", join(repo, "examples/sample.db"), "--to", target.url],
        app,
      ),
      "npx pgshift import",
    );
    const counts = await target.pool.query<{ users: number; tasks: number }>(
      "select (select count(*)::int from public.users) as users, (select count(*)::int from public.tasks) as tasks",
    );
    assert.deepEqual(counts.rows[0], { users: 120, tasks: 2880 });
  } finally {
    await target.drop();
  }
});

const roundTrip = `
import pg from "pg";
import { DocumentStore, createPool, PgshiftError, PGSHIFT_VERSION } from "pgshift";
import { createMapCutover, DocumentStore as CutoverDocumentStore } from "pgshift/cutover";

const pool = new pg.Pool({ connectionString: process.env.APP_DATABASE_URL });
const store = new DocumentStore(pool, { table: "consumer_docs" });
await store.ensureTable();
await store.put("a", { name: "alpha", tags: ["x"] });
await store.put("b", { name: "beta", tags: [] });
const got = await store.get("a");
const found = (await store.containing({ name: "beta" })).map((row) => row.key);
const count = await store.count();
const own = createPool({ url: process.env.APP_DATABASE_URL });
console.log(JSON.stringify({
  got, found, count, version: PGSHIFT_VERSION,
  onePg: own instanceof pg.Pool,
  oneModule: DocumentStore === CutoverDocumentStore,
  cutover: typeof createMapCutover,
  error: new PgshiftError("x", "y") instanceof Error,
}));
await own.end();
await pool.end();
`;

test("an ESM script imports pgshift and round-trips documents through the application's own Pool", async () => {
  writeFileSync(join(app, "round-trip.mjs"), roundTrip);
  const result = ok(
    await run(process.execPath, ["round-trip.mjs"], app, { APP_DATABASE_URL: db().url }),
    "round-trip.mjs",
  );
  assert.deepEqual(JSON.parse(result.stdout), {
    got: { name: "alpha", tags: ["x"] },
    found: ["b"],
    count: 2,
    version: JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version,
    onePg: true,
    oneModule: true,
    cutover: "function",
    error: true,
  });
  const stored = await db().pool.query<{ n: number }>("select count(*)::int as n from public.consumer_docs");
  assert.equal(stored.rows[0]?.n, 2);
});

test("require('pgshift') loads the same module on this Node.js", async () => {
  writeFileSync(
    join(app, "required.cjs"),
    `const p = require("pgshift"); const c = require("pgshift/cutover");
console.log(JSON.stringify([typeof p.importSqlite, typeof c.createCutover, p.DocumentStore === c.DocumentStore]));`,
  );
  const result = ok(await run(process.execPath, ["required.cjs"], app), "required.cjs");
  assert.deepEqual(JSON.parse(result.stdout), ["function", "function", true]);
});

const consumer = `
import pg from "pg";
import {
  assertSchemaVersion, createCutover, createMapCutover, createPool, DocumentStore, importDocuments, importSqlite,
  migrate, NativeModuleError, PgshiftError, startStatusServer, verifySqlite,
  type CutoverKeyAccess, type ImportResult, type MigrateResult, type SchemaVersionInfo, type StatusServer, type VerifyResult,
} from "pgshift";
import { createMapCutover as mapCutover, type CutoverStore } from "pgshift/cutover";

type Task = { id: string; title: string; done: boolean };
interface TaskStore { get(id: string): Promise<Task | undefined>; put(task: Task): Promise<void> }

export async function app(legacy: TaskStore, next: TaskStore, keyAccess: CutoverKeyAccess<TaskStore>): Promise<void> {
  const pool: pg.Pool = createPool({ url: "postgres://app@localhost/app", max: 4 });
  const own = new pg.Pool();
  const docs = new DocumentStore<Task>(own, { table: "tasks" });
  const task: Task | undefined = await docs.get("t1");
  void task;
  const tasks = await createMapCutover<Task>({ name: "tasks", pool: own, legacy: new Map<string, Task>(), next: docs });
  await tasks.cutover.setPhase("dual-write");
  const same: typeof createMapCutover = mapCutover;
  void same;
  const store: CutoverStore<TaskStore> = await createCutover<TaskStore>({
    name: "graph", pool, legacy, next, reads: ["get"], writes: ["put"], keyAccess,
  });
  const found: Task | undefined = await store.get("t1");
  void found;
  const imported: ImportResult = await importSqlite({ path: "app.db", pool });
  const ok: boolean = imported.ok;
  void ok;
  const documents = await importDocuments({ pool, from: [{ id: 1 }], table: "items", key: "/id" });
  const runId: string = documents.runId;
  void runId;
  const verified: VerifyResult = await verifySqlite({ sourcePath: "app.db", pool });
  const identical: boolean = verified.identical;
  void identical;
  const migrated: MigrateResult = await migrate({ pool, dir: "migrations" });
  void migrated;
  const version: SchemaVersionInfo = await assertSchemaVersion(pool, { atLeast: "20250101000000" });
  void version;
  const status: StatusServer = await startStatusServer({ pool, cutovers: [tasks.cutover, store.cutover] });
  const url: string = status.url;
  void url;
  try {
    await status.close();
  } catch (error) {
    if (error instanceof NativeModuleError) console.log(error.module);
    if (error instanceof PgshiftError) console.log(error.code);
  }
  // @ts-expect-error a DocumentStore needs a table
  new DocumentStore(own, {});
  // @ts-expect-error reads and writes name methods of the store
  await createCutover<TaskStore>({ name: "x", pool, legacy, next, reads: ["fetch"], writes: ["put"] });
}
`;

// Internal modules are not part of the API: neither by name nor by path.
const internal = `
import { quoteSqlite } from "pgshift";
import { readChunks } from "pgshift/dist/src/load/import-state.js";
void quoteSqlite;
void readChunks;
`;

const tsc = join(dirname(require.resolve("typescript/package.json")), "bin/tsc");

/** One program per resolution: consumer.ts must have no error, internal.ts exactly its two. */
async function typeCheck(resolution: "node16" | "nodenext" | "bundler"): Promise<Run> {
  const config = join(app, `tsconfig.${resolution}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "ES2022",
        module: resolution === "bundler" ? "ESNext" : resolution,
        moduleResolution: resolution,
        types: ["node"],
        skipLibCheck: false,
      },
      files: ["consumer.ts", "internal.ts"],
    }),
  );
  return run(process.execPath, [tsc, "-p", config, "--pretty", "false"], app);
}

test("a strict TypeScript consumer type-checks under moduleResolution node16, nodenext and bundler", async () => {
  writeFileSync(join(app, "consumer.ts"), consumer);
  writeFileSync(join(app, "internal.ts"), internal);
  for (const resolution of ["node16", "nodenext", "bundler"] as const) {
    const checked = await typeCheck(resolution);
    const errors = checked.stdout.split("\n").filter((line) => /error TS\d+/.test(line));
    assert.equal(checked.code, 2, `${resolution}: ${checked.stdout}${checked.stderr}`);
    assert.deepEqual(
      errors.filter((line) => !line.startsWith("internal.ts(")),
      [],
      `${resolution}: the consumer does not type-check`,
    );
    assert.equal(errors.length, 2, `${resolution}:\n${checked.stdout}`);
    assert.match(errors[0] ?? "", /has no exported member 'quoteSqlite'/);
    assert.match(errors[1] ?? "", /'pgshift\/dist\/src\/load\/import-state\.js'/);
  }
});
