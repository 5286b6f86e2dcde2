import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import type { AuditContext } from "../../audit/audit-context.ts";
import type { SignatureMeaning } from "../../audit/sign-record.ts";
import type { VerifyAuditResult } from "../../audit/verify-audit.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { action } from "../action.ts";
import { renderTable } from "../output.ts";

/** The audit library, loaded when an audit command runs: other commands start without it. */
const library = () => import("../../audit/index.ts");
const keys = () => import("../../verify/report.ts");

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

interface ContextFlags {
  actor?: string;
  reason?: string;
}

function contextOf(flags: ContextFlags): AuditContext | undefined {
  if (!flags.actor && !flags.reason) return undefined;
  return { actor: flags.actor ?? "", ...(flags.reason ? { reason: flags.reason } : {}) };
}

function withContextFlags(command: Command): Command {
  return command
    .option("--actor <name>", "who does this (recorded in the audit event)")
    .option("--reason <text>", "why (recorded in the audit event)");
}

function renderVerify(result: VerifyAuditResult): string {
  const lines = [
    `${result.ok ? "OK" : "TAMPERED"}: ${result.rowsChecked} sealed audit row(s) checked in ${result.durationMs} ms; head seq ${result.headSeq} ${result.headHash.slice(0, 16)}…; ${result.unsealed} not sealed yet`,
  ];
  if (result.anchor)
    lines.push(
      `anchor seq ${result.anchor.seq}: ${result.anchor.found ? "found in the chain" : "NOT in the chain"}`,
    );
  for (const problem of result.problems) lines.push(`  ${problem.kind}: ${problem.message}`);
  return lines.join("\n");
}

function short(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .description(
      "tamper-evident audit trail inside PostgreSQL: who, what, when, why, old and new values, hash-chained (21 CFR Part 11 §11.10(e))",
    );

  withContextFlags(
    audit
      .command("enable")
      .description("audit tables: one audit row per changed row, written in the same transaction")
      .option("--tables <list>", "tables to audit (table or schema.table, comma-separated)")
      .option("--schema <name>", "audit every table of this schema")
      .option("--require-reason", "UPDATE and DELETE fail unless the transaction sets pgshift.reason"),
  ).action(
    action(
      async (ctx, flags: { tables?: string; schema?: string; requireReason?: boolean } & ContextFlags) => {
        const tables = list(flags.tables);
        if (!tables.length && !flags.schema) throw new UsageError("give --tables a,b or --schema NAME");
        const { enableAudit } = await library();
        const context = contextOf(flags);
        const result = await enableAudit({
          pool: await ctx.pool(),
          tables,
          ...(flags.schema ? { schema: flags.schema } : {}),
          requireReason: Boolean(flags.requireReason),
          ...(context ? { context } : {}),
        });
        ctx.out.result(result, () =>
          [
            renderTable(
              ["table", "key", "reason required"],
              result.tables.map((t) => [
                `${t.schema}.${t.name}`,
                t.keyColumns.join(", "),
                t.requireReason ? "yes" : "no",
              ]),
            ),
            result.eventTrigger === "not_superuser"
              ? "event trigger NOT installed (needs a superuser): DDL is not recorded and audit triggers are not guarded; run pgshift audit enable once as a superuser"
              : `event trigger ${result.eventTrigger}: DDL is recorded, audit triggers cannot be dropped or disabled`,
          ].join("\n"),
        );
        return ExitCode.ok;
      },
    ),
  );

  withContextFlags(
    audit
      .command("disable")
      .description("remove the audit triggers from tables (recorded as an audit event; history stays)")
      .requiredOption("--tables <list>", "tables (comma-separated)"),
  ).action(
    action(async (ctx, flags: { tables: string } & ContextFlags) => {
      const { disableAudit } = await library();
      const context = contextOf(flags);
      const result = await disableAudit({
        pool: await ctx.pool(),
        tables: list(flags.tables),
        ...(context ? { context } : {}),
      });
      ctx.out.result(result, () =>
        result.tables.length
          ? `audit disabled on ${result.tables.map((t) => `${t.schema}.${t.name}`).join(", ")}`
          : "none of these tables was audited",
      );
      return ExitCode.ok;
    }),
  );

  audit
    .command("status")
    .description("audited tables, trigger health, sealed and unsealed rows")
    .action(
      action(async (ctx) => {
        const { auditStatus } = await library();
        const status = await auditStatus(await ctx.pool());
        ctx.out.result(status, () => {
          if (!status.installed) return "no audit trail in this database";
          return [
            renderTable(
              ["table", "key", "reason required", "triggers", "since"],
              status.tables.map((t) => [
                `${t.schema}.${t.name}`,
                t.keyColumns.join(", "),
                t.requireReason ? "yes" : "no",
                t.triggersOk ? "ok" : "BROKEN",
                t.enabledAt,
              ]),
            ),
            `event trigger: ${status.eventTrigger ? "enabled" : "MISSING"}`,
            `audit rows: ${status.auditRows} (${status.sealedRows} sealed, ${status.unsealedRows} not yet); head seq ${status.headSeq}, last sealed ${status.lastSealedAt ?? "never"}`,
          ].join("\n");
        });
        return status.installed && status.tables.every((t) => t.triggersOk) ? ExitCode.ok : ExitCode.mismatch;
      }),
    );

  audit
    .command("seal")
    .description("chain the audit rows of every finished transaction (verify and anchor also seal)")
    .action(
      action(async (ctx) => {
        const { sealAudit } = await library();
        const result = await sealAudit(await ctx.pool());
        ctx.out.result(
          result,
          () => `sealed ${result.sealed} audit row(s); head seq ${result.headSeq} ${result.headHash}`,
        );
        return ExitCode.ok;
      }),
    );

  audit
    .command("verify")
    .description(
      "recompute the hash chain; exit 3 naming the first bad row when anything was changed, deleted, inserted, reordered or truncated",
    )
    .option("--anchor <file>", "an anchor from pgshift audit anchor: the chain must still contain it")
    .option("--public-key <file>", "check the anchor's Ed25519 signature with this PEM public key")
    .option("--hmac-key-file <file>", "check the anchor's HMAC signature with the secret in this file")
    .option("--no-seal", "do not seal pending rows first")
    .action(
      action(
        async (ctx, flags: { anchor?: string; publicKey?: string; hmacKeyFile?: string; seal: boolean }) => {
          const { readAuditAnchor, verifyAudit } = await library();
          const keyFile = flags.publicKey ?? flags.hmacKeyFile;
          if (keyFile && !flags.anchor)
            throw new UsageError("--public-key/--hmac-key-file check an --anchor; give one");
          const key = keyFile ? (await keys()).checkingKeyFromFile(keyFile) : undefined;
          const anchor = flags.anchor ? await readAuditAnchor(flags.anchor, key) : undefined;
          if (anchor?.signature && !key)
            ctx.out.notice(
              "the anchor is signed but no key was given: its signature was not checked (pass --public-key)",
            );
          const result = await verifyAudit({
            pool: await ctx.pool(),
            seal: flags.seal,
            ...(anchor ? { anchor } : {}),
          });
          ctx.out.result(result, () => renderVerify(result));
          return result.ok ? ExitCode.ok : ExitCode.mismatch;
        },
      ),
    );

  audit
    .command("anchor")
    .description(
      "seal, then export the chain head to a file (signed with --sign-key): keep it outside the database",
    )
    .requiredOption("--out <file>", "where to write the anchor (JSON)")
    .option("--sign-key <file>", "a PEM Ed25519 private key, or a file holding an HMAC secret")
    .action(
      action(async (ctx, flags: { out: string; signKey?: string }) => {
        const { createAuditAnchor } = await library();
        const key = flags.signKey ? (await keys()).signingKeyFromFile(flags.signKey) : undefined;
        const anchor = await createAuditAnchor(await ctx.pool(), key);
        await writeFile(flags.out, `${JSON.stringify(anchor, null, 2)}\n`);
        ctx.out.result(
          { ...anchor, file: flags.out },
          () =>
            `anchor seq ${anchor.seq} ${anchor.hash} written to ${flags.out}${anchor.signature ? ` (${anchor.signature.algorithm} signature)` : " (unsigned)"}`,
        );
        return ExitCode.ok;
      }),
    );

  audit
    .command("reseal")
    .description(
      "after a legitimate restore to before an anchor: record a signed acknowledgment (an audit event) and write a new anchor",
    )
    .requiredOption("--anchor <file>", "the last anchor taken before the restore")
    .requiredOption("--sign-key <file>", "PEM Ed25519 private key (or HMAC secret file) signing both")
    .requiredOption("--out <file>", "where to write the new anchor")
    .requiredOption("--reason <text>", "why the database was restored (change, incident)")
    .option("--actor <name>", "who restored it")
    .action(
      action(
        async (
          ctx,
          flags: { anchor: string; signKey: string; out: string; reason: string; actor?: string },
        ) => {
          const { acknowledgeRestore, readAuditAnchor } = await library();
          const key = (await keys()).signingKeyFromFile(flags.signKey);
          const result = await acknowledgeRestore({
            pool: await ctx.pool(),
            anchor: await readAuditAnchor(flags.anchor),
            key,
            context: { actor: flags.actor ?? "", reason: flags.reason },
          });
          await writeFile(flags.out, `${JSON.stringify(result.anchor, null, 2)}\n`);
          ctx.out.result(
            { ...result, file: flags.out },
            () =>
              `restore acknowledged in audit row ${result.eventId}; new anchor seq ${result.anchor.seq} written to ${flags.out}`,
          );
          return ExitCode.ok;
        },
      ),
    );

  audit
    .command("log")
    .description("a table's or one record's history: who, when, why, what changed, signatures")
    .requiredOption("--table <name>", "table or schema.table")
    .option("--key <value>", 'the record\'s key: a value for a one-column key, or JSON ({"id": 7})')
    .option("--since <time>", "only changes at or after this time")
    .option("--limit <n>", "at most this many entries (default 1000)")
    .action(
      action(async (ctx, flags: { table: string; key?: string; since?: string; limit?: string }) => {
        const { auditLog } = await library();
        if (flags.limit !== undefined && !/^\d+$/.test(flags.limit))
          throw new UsageError(`--limit must be a whole number, got "${flags.limit}"`);
        const entries = await auditLog({
          pool: await ctx.pool(),
          table: flags.table,
          ...(flags.key !== undefined ? { key: flags.key } : {}),
          ...(flags.since ? { since: flags.since } : {}),
          ...(flags.limit ? { limit: Number(flags.limit) } : {}),
        });
        ctx.out.result(entries, () => {
          if (!entries.length) return "no audited changes";
          return entries
            .map((e) => {
              const head = `#${e.id} ${e.at} ${e.op.toUpperCase()} ${short(e.key)} by ${e.actor ?? "(no actor)"} (db user ${e.dbUser}${e.applicationName ? `, ${e.applicationName}` : ""})${e.reason ? ` because "${e.reason}"` : ""}${e.seq === null ? " [not sealed yet]" : ` [seq ${e.seq}]`}`;
              const changes = e.changes.map((c) => `    ${c.column}: ${short(c.old)} -> ${short(c.new)}`);
              const signatures = e.signatures.map(
                (s) =>
                  `    signed by ${s.signer} (${s.meaning}) at ${s.signedAt}${s.recordMatches ? "" : " — RECORD CHANGED SINCE SIGNING"}`,
              );
              return [head, ...changes, ...signatures].join("\n");
            })
            .join("\n");
        });
        return ExitCode.ok;
      }),
    );

  withContextFlags(
    audit
      .command("sign")
      .description(
        "sign one record version (an audit row id from log): signer, meaning and time bound to its hash",
      )
      .requiredOption("--id <auditId>", "the audit row of the version to sign")
      .requiredOption("--signer <name>", "the signer's printed name")
      .requiredOption("--meaning <meaning>", "review, approval, responsibility or authorship")
      .requiredOption("--sign-key <file>", "the signer's PEM Ed25519 private key (or an HMAC secret file)"),
  ).action(
    action(
      async (ctx, flags: { id: string; signer: string; meaning: string; signKey: string } & ContextFlags) => {
        if (!/^\d+$/.test(flags.id)) throw new UsageError(`--id must be an audit row id, got "${flags.id}"`);
        const { signAuditRecord } = await library();
        const key = (await keys()).signingKeyFromFile(flags.signKey);
        const context = contextOf(flags);
        const result = await signAuditRecord({
          pool: await ctx.pool(),
          auditId: flags.id,
          signer: flags.signer,
          meaning: flags.meaning as SignatureMeaning,
          key,
          ...(context ? { context } : {}),
        });
        ctx.out.result(
          result,
          () =>
            `signed audit row ${flags.id} (${result.signature.table} ${short(result.signature.key)}) as ${flags.meaning} by ${flags.signer}; signature recorded as audit row ${result.eventId}`,
        );
        return ExitCode.ok;
      },
    ),
  );
}
