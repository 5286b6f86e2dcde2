import { findJsonbProblem, mayHaveJsonbProblem } from "../documents/jsonb-check.ts";
import type { BuiltRow } from "../documents/row-builder.ts";
import type { SourceRecord } from "../documents/source-record.ts";
import { JsonCanonicalError } from "../verify/canonical-json.ts";
import type { DocumentSealer } from "./document-sealer.ts";

/**
 * The import's row builder for a table with encrypted fields or record MACs: seals each record, lets
 * the document table's own builder (keys, checks, extra columns, content_hash) build the row from the
 * sealed document, then appends the record MAC (the `record_mac` column follows content_hash).
 * content_hash is thus the sha256 of the stored, sealed text: a hash of the plaintext would let anyone
 * who reads the table confirm a guessed value.
 */
export class SealingRowBuilder {
  constructor(
    private readonly inner: { build(record: SourceRecord): BuiltRow },
    private readonly sealer: DocumentSealer,
    private readonly keyCount: number,
  ) {}

  build(record: SourceRecord): BuiltRow {
    const value = record.value;
    // anything but an object is the inner builder's to reject, with its own words
    if (value === null || typeof value !== "object" || Array.isArray(value)) return this.inner.build(record);
    // a value jsonb cannot store (NUL, a lone surrogate) is rejected as the plain import rejects it,
    // before encryption would hide it (and UTF-8 would replace a lone surrogate)
    const plainText = record.text ?? JSON.stringify(value);
    if (mayHaveJsonbProblem(plainText)) {
      const problem = findJsonbProblem(value);
      if (problem)
        return {
          ok: false,
          reason: `${record.location}: ${problem.reason} at ${problem.pointer}`,
          column: "doc",
        };
    }
    let sealed: { value: Record<string, unknown>; text: string; canonical?: string };
    try {
      sealed = this.sealer.seal(value as Record<string, unknown>, record.text);
    } catch (error) {
      if (!(error instanceof JsonCanonicalError)) throw error;
      return { ok: false, reason: `${record.location}: ${error.message}`, column: "doc" };
    }
    const built = this.inner.build({ ...record, value: sealed.value, text: sealed.text });
    if (!built.ok || !this.sealer.integrity) return built;
    try {
      const keyTexts = built.values.slice(0, this.keyCount).map(String);
      built.values.push(this.sealer.mac(keyTexts, sealed.value, sealed.text, sealed.canonical));
    } catch (error) {
      if (!(error instanceof JsonCanonicalError)) throw error;
      return { ok: false, reason: `${record.location}: ${error.message}`, column: "doc" };
    }
    return built;
  }
}
