import { ColumnSealer } from "../crypto/column-sealer.ts";
import type { Keyring } from "../crypto/keyring.ts";
import type { ColumnPlan, TablePlan } from "../schema/plan.ts";
import { type CanonicalConverter, canonicalConverter, isUnconvertible } from "../verify/canonical.ts";
import { kindOfPlannedType, readingOf } from "../verify/plan-tables.ts";
import type { ValueProblem } from "./row-encoder.ts";

/**
 * The import's side of encrypted columns: after the row encoder has checked a row (with each column's
 * own type, as for a plain import), the cells of its encrypted columns are replaced by envelopes of
 * the values' canonical text, and with integrity a `record_mac` cell is appended: the MAC of the row
 * exactly as PostgreSQL will print it (canonical texts, envelopes as jsonb text), the form
 * `verify --integrity` reads back. Runs in the calling thread (the keys stay out of worker threads).
 */
export class RowSealer {
  private readonly sealer: ColumnSealer;
  private readonly converters: CanonicalConverter[];
  private readonly encryptedAt: number[];
  private readonly mac: boolean;
  problem: ValueProblem | undefined;

  constructor(table: TablePlan, keyring: Keyring) {
    this.sealer = new ColumnSealer(
      keyring,
      table.targetName,
      table.columns.map((c) => c.targetName),
      table.columns.flatMap((c) =>
        c.encrypted
          ? [
              {
                name: c.targetName,
                originalType: c.encrypted.originalType,
                blindIndex: c.encrypted.blindIndex,
              },
            ]
          : [],
      ),
      table.primaryKey,
      Boolean(table.recordMac),
    );
    this.converters = table.columns.map((c) =>
      canonicalConverter(kindOfPlannedType(c.encrypted?.originalType ?? c.pgType), readingOf(c.conversion)),
    );
    this.encryptedAt = table.columns.flatMap((c, i) => (c.encrypted ? [i] : []));
    this.mac = Boolean(table.recordMac);
  }

  /**
   * The COPY line to send for an encoded row (`row` is the raw `[rowid, ...values]`, `line` what the
   * encoder made of it); undefined with `problem` set when a value has no canonical form to encrypt.
   */
  seal(row: readonly unknown[], line: string): string | undefined {
    const cells = line.slice(0, -1).split("\t");
    const fields: (string | null)[] = this.mac
      ? this.converters.map((convert, i) => convert(row[i + 1] as never))
      : [];
    for (let k = 0; k < this.encryptedAt.length; k++) {
      const at = this.encryptedAt[k]!;
      const canonical = this.mac ? fields[at]! : this.converters[at]!(row[at + 1] as never);
      if (canonical === null) continue;
      if (isUnconvertible(canonical)) {
        this.problem = { column: at, reason: `no canonical text to encrypt (${canonical.slice(1)})` };
        return undefined;
      }
      const envelope = this.sealer.sealValue(k, canonical);
      if (this.mac) fields[at] = envelope;
      cells[at] = copyText(envelope);
    }
    if (this.mac) {
      const bad = fields.findIndex((f) => f !== null && isUnconvertible(f));
      if (bad >= 0) {
        this.problem = {
          column: bad,
          reason: `no canonical text for the record MAC (${fields[bad]!.slice(1)})`,
        };
        return undefined;
      }
      cells.push(copyText(this.sealer.mac(fields)));
    }
    return `${cells.join("\t")}\n`;
  }
}

/** COPY text of a value holding no tab, newline or carriage return (envelopes, MACs): backslashes doubled. */
function copyText(value: string): string {
  return value.includes("\\") ? value.replace(/\\/g, "\\\\") : value;
}

/** The columns as the row encoder checks them: encrypted ones with their own type. */
export function encodingColumns(columns: readonly ColumnPlan[]): ColumnPlan[] {
  return columns.map((c) => (c.encrypted ? { ...c, pgType: c.encrypted.originalType } : c));
}

/** Whether a planned table seals rows (encrypted columns or record MACs). */
export function sealsRows(table: TablePlan): boolean {
  return Boolean(table.recordMac) || table.columns.some((c) => c.encrypted);
}
