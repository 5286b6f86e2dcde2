import { redactText, secretsIn } from "../config/redact.ts";
import { escapeControl } from "./terminal-text.ts";

/** Environment variables that may carry a password, read before any of them is parsed. */
const CREDENTIAL_ENV = ["DATABASE_URL", "PGSHIFT_TO", "PGSHIFT_DATABASE_URL"];

/**
 * Every password the user handed this process, whether or not it parses: each argument and each
 * connection variable, and PGPASSWORD as it is.
 */
function secretsOfProcess(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const values = [...argv, ...CREDENTIAL_ENV.map((name) => env[name] ?? "")];
  const secrets = values.flatMap((value) => secretsIn(value));
  if (env.PGPASSWORD) secrets.push(...secretsIn(`:${env.PGPASSWORD}@`), env.PGPASSWORD);
  return secrets;
}

/** Where a command's output goes: a result on stdout (human or JSON), notices and progress on stderr. */
export class Output {
  readonly json: boolean;
  readonly tty: boolean;
  private readonly secrets: string[] = [];

  constructor(options: { json: boolean; stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream }) {
    this.json = options.json;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.tty = Boolean(this.stderr.isTTY) && !this.json;
    this.secrets.push(...secretsOfProcess(process.argv.slice(2), process.env));
  }

  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;

  /** Secrets (passwords) to scrub from everything written. */
  addSecret(secret: string | undefined): void {
    if (secret) this.secrets.push(secret, ...secretsIn(`:${secret}@`));
  }

  scrub(text: string): string {
    return redactText(text, this.secrets);
  }

  /**
   * Human text for the user to read: redacted, and with control characters made visible on stderr
   * and on a terminal. stdout piped to a file or psql keeps names byte-exact (as `ls` does), so a
   * dry run's DDL still creates the right names.
   */
  private human(text: string, stream: NodeJS.WriteStream): string {
    const scrubbed = this.scrub(text);
    return stream === this.stdout && !stream.isTTY ? scrubbed : escapeControl(scrubbed);
  }

  /** A one-line notice for the user (stderr, or a JSON line with --json). */
  notice(message: string): void {
    if (this.json)
      this.stderr.write(`${JSON.stringify({ event: "notice", message: this.scrub(message) })}\n`);
    else this.stderr.write(`${this.human(message, this.stderr)}\n`);
  }

  /** The command's result: the library's object as JSON with --json, else the human rendering. */
  result(value: unknown, human: () => string): void {
    if (this.json) this.stdout.write(`${this.scrub(JSON.stringify(value, jsonReplacer, 2))}\n`);
    else {
      const text = human();
      if (text) this.stdout.write(`${this.human(text, this.stdout)}\n`);
    }
  }

  /** A raw line on stdout (for values meant to be captured, like `local url`). */
  raw(text: string): void {
    this.stdout.write(`${text}\n`);
  }

  /**
   * A failure: with --json, the result object `{ok: false, error, message, ...}` on stdout and a JSON
   * line `{"event":"error",...}` on stderr (so that a log of JSON lines stays parseable); else one
   * `pgshift: message` line on stderr.
   */
  error(payload: Record<string, unknown>, human: string): void {
    if (this.json) {
      this.stdout.write(`${this.scrub(JSON.stringify({ ok: false, ...payload }, jsonReplacer, 2))}\n`);
      this.stderr.write(`${this.scrub(JSON.stringify({ event: "error", ...payload }, jsonReplacer))}\n`);
    } else this.stderr.write(`${this.human(`pgshift: ${human}`, this.stderr)}\n`);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/** A plain text table: columns padded, numbers right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((row) =>
    row.map((cell) => (cell === null || cell === undefined ? "" : String(cell))),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const numeric = headers.map(
    (_, i) =>
      cells.length > 0 &&
      cells.every((row) => /^-?[\d.,]+( ?[a-z%/]+)?$/i.test(row[i] ?? "") || row[i] === ""),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join("\n");
}
