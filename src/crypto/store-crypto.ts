import type pg from "pg";
import { UsageError } from "../errors.ts";
import { getAtPointer, parsePointer } from "../documents/json-pointer.ts";
import { findJsonbProblem } from "../documents/jsonb-check.ts";
import { jsonbTextOfValue } from "../verify/canonical-json.ts";
import { DocumentSealer, type FieldEncryptionOptions, type SealedPath } from "./document-sealer.ts";
import { EncryptedTableError } from "./crypto-errors.ts";
import { readEncryptedTable } from "./encryption-registry.ts";

function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  return a.length <= b.length && a.every((segment, i) => segment === b[i]);
}

/** Paths of a containment pattern's leaves ({"a": {"b": 1}} -> [["a", "b"]]). */
function patternPaths(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [prefix];
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [prefix];
  return entries.flatMap(([k, v]) => patternPaths(v, [...prefix, k]));
}

/**
 * DocumentStore's side of field encryption and record MACs. With explicit options, the store seals and
 * opens as told. With a keyring alone, it learns the table's paths from pgshift.encrypted_tables on
 * first use. Without a keyring, it checks that registry once and refuses every call on a table whose
 * fields are encrypted (a clear error, not ciphertext passed off as data).
 */
export class StoreCrypto {
  private sealer: DocumentSealer | undefined;
  private checked: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly table: string,
    private readonly options: FieldEncryptionOptions,
  ) {
    this.sealer = DocumentSealer.from(options);
    // explicit paths: nothing to learn
    if (this.sealer) this.checked = Promise.resolve();
  }

  /** Resolves once the store knows what is protected; rejects when it lacks the keys for it. */
  ready(): Promise<void> {
    this.checked ??= this.learn().catch((error: unknown) => {
      this.checked = undefined;
      throw error;
    });
    return this.checked;
  }

  private async learn(): Promise<void> {
    const info = await readEncryptedTable(this.pool, this.schema, this.table);
    if (!info || (info.encryptedPaths.length === 0 && !info.integrity)) return;
    if (!this.options.keyring)
      throw new EncryptedTableError(
        `${this.schema}.${this.table} has encrypted fields (${info.encryptedPaths.join(", ") || "record MACs"}); open the DocumentStore with its keys (keyring: loadKeyring("keys.json") or loadKeyring("env:VAR"))`,
        { schema: this.schema, table: this.table, encryptedPaths: info.encryptedPaths },
      );
    this.sealer = DocumentSealer.from({
      keyring: this.options.keyring,
      encryptedPaths: info.encryptedPaths,
      blindIndexPaths: info.blindIndexPaths,
      integrity: info.integrity,
    });
  }

  get integrity(): boolean {
    return this.sealer?.integrity ?? false;
  }

  /** The sealer, when the store seals (after ready()). */
  get active(): DocumentSealer | undefined {
    return this.sealer;
  }

  /** A document as read, decrypted. */
  open<D>(doc: D): D {
    return this.sealer && doc !== undefined && doc !== null ? this.sealer.open(doc) : doc;
  }

  /** The text to store for `doc` and its MAC (when the table keeps them). */
  seal(
    keyValues: readonly (string | number)[],
    doc: Record<string, unknown>,
  ): { text: string; mac?: string } {
    if (!this.sealer) return { text: JSON.stringify(doc) };
    // what the server would refuse in a plain document must not slip through inside a ciphertext
    const problem = findJsonbProblem(doc);
    if (problem)
      throw new UsageError(`put(): ${problem.reason} at ${problem.pointer}; jsonb cannot store it`);
    const sealed = this.sealer.seal(doc);
    if (!this.sealer.integrity) return { text: sealed.text };
    return {
      text: sealed.text,
      mac: this.sealer.mac(keyValues.map(String), sealed.value, sealed.text, sealed.canonical),
    };
  }

  /** Refuses a query that would compare ciphertext with plaintext (no index can answer it). */
  assertPlainPaths(paths: readonly string[][], what: string): void {
    for (const path of paths)
      for (const sealed of this.sealer?.paths ?? [])
        if (isPrefix(sealed.path, path) || isPrefix(path, sealed.path))
          throw new UsageError(
            `${what} cannot match inside the encrypted ${sealed.pointer}${sealed.blindIndex ? `; use wherePath("${sealed.pointer}", value), which uses its blind index` : ""}`,
          );
  }

  assertPlainPattern(partial: unknown): void {
    this.assertPlainPaths(patternPaths(partial), "containing()");
  }

  /**
   * The blind-index lookup for wherePath() on an encrypted path: the path and the indexes to match;
   * undefined for a plain path.
   */
  blindLookup(pointer: string, value: unknown): { sealed: SealedPath; indexes: string[] } | undefined {
    const sealed = this.sealer?.pathAt(pointer);
    if (!sealed) {
      this.assertPlainPaths([parsePointer(pointer)], `wherePath("${pointer}")`);
      return undefined;
    }
    if (!sealed.blindIndex)
      throw new UsageError(
        `${sealed.pointer} is encrypted without a blind index, so it cannot be looked up; import it with --blind-index ${sealed.pointer}`,
      );
    return { sealed, indexes: this.sealer!.blindIndexes(sealed, value) };
  }

  /** Whether an opened document really holds `value` at the sealed path (a copied index does not match). */
  matches(sealed: SealedPath, doc: unknown, value: unknown): boolean {
    const found = getAtPointer(doc, sealed.path);
    return found !== undefined && jsonbTextOfValue(found) === jsonbTextOfValue(value);
  }
}
