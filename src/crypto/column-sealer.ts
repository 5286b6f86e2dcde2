import pg from "pg";
import { recordText } from "../verify/canonical.ts";
import { jsonbTextOfValue } from "../verify/canonical-json.ts";
import { blindIndex } from "./blind-index.ts";
import { DecryptionError, EncryptedTableError } from "./crypto-errors.ts";
import {
  decryptText,
  ENVELOPE_MARK,
  ENVELOPE_VERSION,
  type Envelope,
  encryptText,
  isEnvelope,
} from "./field-cipher.ts";
import type { FieldKey, Keyring } from "./keyring.ts";
import { recordMac } from "./record-mac.ts";

/**
 * Column-level encryption of relational tables (SQLite imports): the same envelope, AES-256-GCM, blind
 * index and record MAC as document fields (field-cipher.ts, blind-index.ts, record-mac.ts), applied to
 * whole columns. What is encrypted is the value's canonical text in its planned type (PostgreSQL's own
 * output under the canonical session settings, verify/canonical.ts), so that a key holder gets back
 * exactly what a plain import would have stored, and verification compares it with the source.
 *
 * The additional authenticated data binds each ciphertext to its table and column (and key id): a
 * value copied into another column or table does not decrypt. The schema is left out on purpose: a
 * blue-green refresh swaps schemas.
 */
export interface EncryptedColumn {
  /** Target column name. */
  name: string;
  /** The PostgreSQL type its values have, decrypted ("varchar(80)", "bigint", "numeric(10,2)"). */
  originalType: string;
  /** The type's oid on the server that registered it (to parse decrypted text like node-postgres). */
  originalOid?: number;
  blindIndex: boolean;
}

/** The AAD context (and blind-index domain) of a column: never equal to a JSON pointer of a document. */
export function columnContext(table: string, column: string): string {
  return `column:${JSON.stringify([table, column])}`;
}

/** Key ids and base64 need no JSON escaping; anything else goes through the general serializer. */
const PLAIN = /^[A-Za-z0-9+/=_-]*$/;

/**
 * PostgreSQL's text of a stored jsonb envelope (what `column::text` returns): jsonb orders keys by
 * length, then bytes (bi, ct, iv, kid, tag, $pgshift_enc). Written directly: the general canonical
 * serializer cost 3 µs a value, as much as the blind index.
 */
export function envelopeText(envelope: Envelope): string {
  const { bi, ct, iv, kid, tag } = envelope;
  if (
    envelope[ENVELOPE_MARK] !== ENVELOPE_VERSION ||
    Object.keys(envelope).length !== (bi === undefined ? 5 : 6) ||
    !PLAIN.test(kid) ||
    (bi !== undefined && !PLAIN.test(bi)) ||
    !PLAIN.test(ct) ||
    !PLAIN.test(iv) ||
    !PLAIN.test(tag)
  )
    return jsonbTextOfValue(envelope);
  return `{${bi === undefined ? "" : `"bi": "${bi}", `}"ct": "${ct}", "iv": "${iv}", "kid": "${kid}", "tag": "${tag}", "${ENVELOPE_MARK}": ${ENVELOPE_VERSION}}`;
}

/**
 * Seals and opens the encrypted columns of one table. Rows are arrays of canonical field texts (null
 * for NULL) in the table's column order, without `record_mac`. Pure: no I/O.
 */
export class ColumnSealer {
  /** Index of each encrypted column in the row; -1 when absent. */
  private readonly positions: number[];
  private readonly contexts: string[];
  private readonly keyPositions: number[];

  constructor(
    readonly keyring: Keyring,
    readonly table: string,
    readonly columnNames: readonly string[],
    readonly encrypted: readonly EncryptedColumn[],
    readonly keyColumns: readonly string[],
    readonly integrity: boolean,
  ) {
    this.positions = encrypted.map((c) => columnNames.indexOf(c.name));
    this.contexts = encrypted.map((c) => columnContext(table, c.name));
    this.keyPositions = keyColumns.map((k) => columnNames.indexOf(k));
  }

  /** The envelope text of one plaintext (canonical text) of encrypted column `which`. */
  sealValue(which: number, canonical: string, key: FieldKey = this.keyring.active): string {
    const context = this.contexts[which]!;
    const bi = this.encrypted[which]!.blindIndex ? blindIndex(key, context, canonical) : undefined;
    return envelopeText(encryptText(key, context, canonical, bi));
  }

  /**
   * The stored fields of a canonical row: each encrypted value replaced by its envelope's text. In
   * place (pass a row of one's own) and returned.
   */
  sealRow(fields: (string | null)[]): (string | null)[] {
    for (let k = 0; k < this.positions.length; k++) {
      const at = this.positions[k]!;
      const value = fields[at];
      if (value !== null && value !== undefined) fields[at] = this.sealValue(k, value);
    }
    return fields;
  }

  /** The record MAC of a stored row (its key texts and its record text), under the active key. */
  mac(stored: readonly (string | null)[]): string {
    return recordMac(this.keyring.active, this.keyTexts(stored), recordText(stored));
  }

  keyTexts(stored: readonly (string | null)[]): string[] {
    return this.keyPositions.map((i) => stored[i] ?? "");
  }

  /** The row text a MAC covers. */
  macText(stored: readonly (string | null)[]): string {
    return recordText(stored);
  }

  /** The plaintext (canonical text) of encrypted column `which`'s stored envelope text; DecryptionError when it does not open. */
  openValue(which: number, stored: string): string {
    const envelope = parseEnvelope(stored);
    if (!envelope)
      throw new DecryptionError(
        `${this.table}.${this.encrypted[which]!.name} holds a value that is not a pgshift envelope`,
        { column: this.encrypted[which]!.name, pointer: this.encrypted[which]!.name },
      );
    try {
      return decryptText(this.keyring, this.contexts[which]!, envelope);
    } catch (error) {
      if (error instanceof DecryptionError)
        throw new DecryptionError(
          `${this.table}.${this.encrypted[which]!.name} does not decrypt under key "${envelope.kid}": it was changed, or ${this.keyring.origin} holds another key under that id`,
          { column: this.encrypted[which]!.name, pointer: this.encrypted[which]!.name, keyId: envelope.kid },
        );
      throw error;
    }
  }

  /** A stored row (canonical texts, envelopes as text) with its encrypted values decrypted (a copy). */
  openRow(stored: readonly (string | null)[]): (string | null)[] {
    const out = [...stored];
    for (let k = 0; k < this.positions.length; k++) {
      const at = this.positions[k]!;
      const value = out[at];
      if (value !== null && value !== undefined) out[at] = this.openValue(k, value);
    }
    return out;
  }

  /**
   * What is wrong with the encrypted values of a stored row: not an envelope, a key the keyring lacks,
   * or a ciphertext that does not authenticate here. Empty when all is well.
   */
  fieldProblems(
    stored: readonly (string | null)[],
  ): { pointer: string; problem: "decrypt_failed" | "unknown_key" | "not_encrypted" }[] {
    const problems: { pointer: string; problem: "decrypt_failed" | "unknown_key" | "not_encrypted" }[] = [];
    for (let k = 0; k < this.positions.length; k++) {
      const value = stored[this.positions[k]!];
      if (value === null || value === undefined) continue;
      const name = this.encrypted[k]!.name;
      const envelope = parseEnvelope(value);
      if (!envelope) problems.push({ pointer: name, problem: "not_encrypted" });
      else if (!this.keyring.has(envelope.kid)) problems.push({ pointer: name, problem: "unknown_key" });
      else
        try {
          decryptText(this.keyring, this.contexts[k]!, envelope);
        } catch {
          problems.push({ pointer: name, problem: "decrypt_failed" });
        }
    }
    return problems;
  }

  /**
   * A stored row with every envelope not under the active key encrypted again under it (blind index
   * recomputed); `changed` lists the encrypted columns rewritten. Throws DecryptionError /
   * EncryptionKeyError for a value that does not open.
   */
  reseal(stored: readonly (string | null)[]): { fields: (string | null)[]; changed: number[] } {
    const fields = [...stored];
    const changed: number[] = [];
    const active = this.keyring.active;
    for (let k = 0; k < this.positions.length; k++) {
      const at = this.positions[k]!;
      const value = fields[at];
      if (value === null || value === undefined) continue;
      const envelope = parseEnvelope(value);
      if (envelope && envelope.kid === active.id) continue;
      fields[at] = this.sealValue(k, this.openValue(k, value), active);
      changed.push(k);
    }
    return { fields, changed };
  }

  /** Blind indexes of a plaintext (canonical text) of encrypted column `which`, under every key. */
  blindIndexes(which: number, canonical: string): string[] {
    return this.keyring.all().map((key) => blindIndex(key, this.contexts[which]!, canonical));
  }

  /** Which encrypted column `name` is; -1 when it is not. */
  indexOf(name: string): number {
    return this.encrypted.findIndex((c) => c.name === name);
  }

  /** Position of encrypted column `which` in the row. */
  positionOf(which: number): number {
    return this.positions[which]!;
  }
}

function parseEnvelope(text: string): Envelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isEnvelope(value) ? value : undefined;
}

/** numeric(p,s): the canonical text (trailing zeros trimmed) padded back to s digits after the point. */
function padScale(text: string, type: string): string {
  const scale = /^numeric\s*\(\s*\d+\s*,\s*(\d+)\s*\)$/i.exec(type.trim())?.[1];
  if (scale === undefined || !/^-?\d+(\.\d+)?$/.test(text)) return text;
  const s = Number(scale);
  if (s === 0) return text;
  const [whole, fraction = ""] = text.split(".");
  return `${whole}.${fraction.padEnd(s, "0")}`;
}

/**
 * The JavaScript value node-postgres would have returned for a plain column of `column.originalType`,
 * from a decrypted canonical text: its type parser for the type's oid (text when unknown).
 */
export function valueOfCanonical(column: EncryptedColumn, canonical: string): unknown {
  const base = column.originalType
    .replace(/\(.*\)/, "")
    .trim()
    .toLowerCase();
  let text = canonical;
  if (base === "bytea") text = `\\x${canonical}`;
  else if (base === "numeric") text = padScale(canonical, column.originalType);
  if (column.originalOid === undefined) return text;
  return pg.types.getTypeParser(column.originalOid, "text")(text);
}

/** The error for a caller that reads an encrypted table without keys. */
export function noKeysError(schema: string, table: string, columns: readonly string[]): EncryptedTableError {
  return new EncryptedTableError(
    `${schema}.${table} has encrypted columns (${columns.join(", ")}); read them with its keys (decryptRow(keyring, ...), keyring from loadKeyring("keys.json") or loadKeyring("env:VAR")): without them every value is ciphertext`,
    { schema, table, encryptedColumns: [...columns] },
  );
}
