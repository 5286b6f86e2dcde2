import { UsageError } from "../errors.ts";
import { formatPointer, getAtPointer, parsePointer } from "../documents/json-pointer.ts";
import { documentRange, rangeAtPointer } from "../documents/json-ranges.ts";
import { documentJsonbText, numberFormMatters, parsedValueJsonbText } from "../verify/canonical-document.ts";
import { jsonbText, jsonbTextOfValue } from "../verify/canonical-json.ts";
import { blindIndex } from "./blind-index.ts";
import { EncryptionKeyError } from "./crypto-errors.ts";
import { decryptText, decryptValue, encryptText, isEnvelope } from "./field-cipher.ts";
import type { Keyring } from "./keyring.ts";
import { recordMac } from "./record-mac.ts";

/** What to protect in a document table; shared by importDocuments, DocumentStore and the CLI. */
export interface FieldEncryptionOptions {
  /** The keys; required when any of the options below is set. */
  keyring?: Keyring;
  /** JSON pointers of the fields encrypted at rest ("/ssn", "/patient/name"). */
  encryptedPaths?: readonly string[];
  /** Encrypted pointers that also get a blind index, so that equality lookups work on them. */
  blindIndexPaths?: readonly string[];
  /** Keep a keyed HMAC-SHA256 of every record in `record_mac`, next to `content_hash`. */
  integrity?: boolean;
}

export interface SealedPath {
  /** As given, normalized: "/patient/name". */
  pointer: string;
  path: string[];
  blindIndex: boolean;
}

function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  return a.length <= b.length && a.every((segment, i) => segment === b[i]);
}

/** The value with the one at `path` replaced, copying only the containers on the way. */
function setAtPath(value: unknown, path: readonly string[], replacement: unknown, depth = 0): unknown {
  if (depth === path.length) return replacement;
  const segment = path[depth]!;
  if (Array.isArray(value)) {
    const copy = [...value];
    copy[Number(segment)] = setAtPath(value[Number(segment)], path, replacement, depth + 1);
    return copy;
  }
  const record = value as Record<string, unknown>;
  return { ...record, [segment]: setAtPath(record[segment], path, replacement, depth + 1) };
}

/** `bytes` with each [start, end) replaced (ranges that do not overlap). */
function splice(bytes: Buffer, edits: { start: number; end: number; replacement: string }[]): string {
  edits.sort((a, b) => a.start - b.start);
  const parts: string[] = [];
  let at = 0;
  for (const edit of edits) {
    parts.push(bytes.toString("utf8", at, edit.start), edit.replacement);
    at = edit.end;
  }
  parts.push(bytes.toString("utf8", at));
  return parts.join("");
}

/**
 * Seals documents before they are stored (encrypts the configured fields, adds blind indexes, computes
 * the record MAC) and opens them after they are read. Pure: no I/O.
 */
export class DocumentSealer {
  readonly paths: readonly SealedPath[];
  readonly integrity: boolean;
  readonly keyring: Keyring;

  private constructor(keyring: Keyring, paths: SealedPath[], integrity: boolean) {
    this.keyring = keyring;
    this.paths = paths;
    this.integrity = integrity;
  }

  /** The sealer the options ask for; undefined when they ask for nothing. Validates them all. */
  static from(options: FieldEncryptionOptions): DocumentSealer | undefined {
    const encrypted = options.encryptedPaths ?? [];
    const blind = options.blindIndexPaths ?? [];
    if (encrypted.length === 0 && blind.length === 0 && !options.integrity) return undefined;
    if (!options.keyring)
      throw new EncryptionKeyError(
        "encrypted fields and integrity MACs need keys: pass --keys FILE or --keys env:VAR (library: keyring, from loadKeyring())",
      );
    const paths: SealedPath[] = encrypted.map((pointer) => {
      const path = parsePointer(pointer);
      if (path.length === 0) throw new UsageError(`--encrypt "${pointer}": name a field, like /ssn`);
      return { pointer: formatPointer(path), path, blindIndex: false };
    });
    for (const a of paths)
      for (const b of paths)
        if (a !== b && isPrefix(a.path, b.path))
          throw new UsageError(
            `--encrypt ${a.pointer} and ${b.pointer} overlap; encrypt ${a.pointer} alone (it holds the other)`,
          );
    for (const pointer of blind) {
      const normalized = formatPointer(parsePointer(pointer));
      const sealed = paths.find((p) => p.pointer === normalized);
      if (!sealed)
        throw new UsageError(
          `--blind-index ${pointer}: a blind index is for an encrypted path; add it to --encrypt`,
        );
      sealed.blindIndex = true;
    }
    return new DocumentSealer(options.keyring, paths, Boolean(options.integrity));
  }

  /** Refuses a key, --column or --trgm on an encrypted path: they would keep the plaintext beside it. */
  assertNotExposed(uses: readonly { what: string; path: readonly string[] }[]): void {
    for (const use of uses)
      for (const sealed of this.paths)
        if (isPrefix(sealed.path, use.path) || isPrefix(use.path, sealed.path))
          throw new UsageError(
            `${use.what} reads ${formatPointer(use.path)}, which overlaps the encrypted ${sealed.pointer}: its plaintext would be stored beside the ciphertext; choose another path`,
          );
  }

  /** The sealed path at `pointer`, if it is one. */
  pathAt(pointer: string): SealedPath | undefined {
    const normalized = formatPointer(parsePointer(pointer));
    return this.paths.find((p) => p.pointer === normalized);
  }

  /**
   * A document with its encrypted fields replaced by envelopes: its value and its JSON text, and its
   * jsonb canonical text when it came for free. When no number in the source's text has a written form
   * that matters (canonical-document.ts), the stored text is the sealed value's canonical text; otherwise
   * envelopes are spliced into the source's text, so every number keeps the digits and scale it was
   * written with. Throws JsonCanonicalError for a value jsonb cannot store.
   */
  seal(
    value: Record<string, unknown>,
    text?: string,
  ): { value: Record<string, unknown>; text: string; canonical?: string } {
    if (text === undefined || !numberFormMatters(text)) {
      const fast = this.sealParsed(value);
      if (fast) return fast;
    }
    return this.sealText(value, text);
  }

  /** seal() from the parsed value alone; undefined when a value cannot be written from it. */
  private sealParsed(
    value: Record<string, unknown>,
  ): { value: Record<string, unknown>; text: string; canonical: string } | undefined {
    const key = this.keyring.active;
    let sealed: unknown = value;
    for (const p of this.paths) {
      const current = getAtPointer(value, p.path);
      if (current === undefined) continue;
      const canonical = parsedValueJsonbText(current);
      if (canonical === undefined) return undefined;
      const envelope = encryptText(
        key,
        p.pointer,
        canonical,
        p.blindIndex ? blindIndex(key, p.pointer, canonical) : undefined,
      );
      sealed = setAtPath(sealed, p.path, envelope);
    }
    const canonical = parsedValueJsonbText(sealed);
    if (canonical === undefined) return undefined;
    return { value: sealed as Record<string, unknown>, text: canonical, canonical };
  }

  /** seal() by splicing envelopes into the source's text. */
  private sealText(
    value: Record<string, unknown>,
    text?: string,
  ): { value: Record<string, unknown>; text: string } {
    const key = this.keyring.active;
    const bytes = text === undefined ? undefined : Buffer.from(text, "utf8");
    const whole = bytes && documentRange(bytes);
    const edits: { start: number; end: number; replacement: string }[] = [];
    let sealed: unknown = value;
    let spliceable = bytes !== undefined;
    for (const p of this.paths) {
      const current = getAtPointer(value, p.path);
      if (current === undefined) continue;
      const range = bytes && whole ? rangeAtPointer(bytes, whole, p.path) : undefined;
      if (!range) spliceable = false;
      const canonical = range
        ? jsonbText(bytes!.toString("utf8", range.start, range.end))
        : jsonbTextOfValue(current);
      const envelope = encryptText(
        key,
        p.pointer,
        canonical,
        p.blindIndex ? blindIndex(key, p.pointer, canonical) : undefined,
      );
      sealed = setAtPath(sealed, p.path, envelope);
      if (range) edits.push({ start: range.start, end: range.end, replacement: JSON.stringify(envelope) });
    }
    const record = sealed as Record<string, unknown>;
    if (sealed === value && text !== undefined) return { value, text };
    if (!spliceable || !bytes) return { value: record, text: JSON.stringify(record) };
    return { value: record, text: splice(bytes, edits) };
  }

  /**
   * The record MAC of a stored row: its key values as text and its document (value and JSON text, or
   * its canonical text when known).
   */
  mac(keyTexts: readonly string[], value: unknown, text: string, canonical?: string): string {
    return recordMac(this.keyring.active, keyTexts, canonical ?? documentJsonbText(text, value));
  }

  /**
   * A stored document with its envelopes decrypted (in place: pass a document just read). A plaintext
   * value at an encrypted path (a row written without encryption) is left as it is.
   */
  open<D>(doc: D): D {
    let opened: unknown = doc;
    for (const p of this.paths) {
      const current = getAtPointer(opened, p.path);
      if (isEnvelope(current))
        opened = setAtPath(opened, p.path, decryptValue(this.keyring, p.pointer, current));
    }
    return opened as D;
  }

  /**
   * A stored document's text (`doc::text`) with every envelope not under the active key re-encrypted
   * under it (blind index recomputed), spliced into the text so that nothing else changes; `changed`
   * false when every envelope is current. Throws DecryptionError / EncryptionKeyError for an envelope
   * that does not open.
   */
  reseal(text: string): { text: string; changed: boolean } {
    const key = this.keyring.active;
    const bytes = Buffer.from(text, "utf8");
    const whole = documentRange(bytes);
    const edits: { start: number; end: number; replacement: string }[] = [];
    for (const p of this.paths) {
      const range = rangeAtPointer(bytes, whole, p.path);
      if (!range) continue;
      const current: unknown = JSON.parse(bytes.toString("utf8", range.start, range.end));
      if (!isEnvelope(current) || current.kid === key.id) continue;
      const canonical = decryptText(this.keyring, p.pointer, current);
      const envelope = encryptText(
        key,
        p.pointer,
        canonical,
        p.blindIndex ? blindIndex(key, p.pointer, canonical) : undefined,
      );
      edits.push({ start: range.start, end: range.end, replacement: JSON.stringify(envelope) });
    }
    if (edits.length === 0) return { text, changed: false };
    return { text: splice(bytes, edits), changed: true };
  }

  /**
   * What is wrong with the encrypted fields of a stored document (parsed): an envelope that does not
   * open, or a plaintext value where an envelope belongs. Empty when all is well.
   */
  fieldProblems(
    doc: unknown,
  ): { pointer: string; problem: "decrypt_failed" | "unknown_key" | "not_encrypted" }[] {
    const problems: { pointer: string; problem: "decrypt_failed" | "unknown_key" | "not_encrypted" }[] = [];
    for (const p of this.paths) {
      const current = getAtPointer(doc, p.path);
      if (current === undefined) continue;
      if (!isEnvelope(current)) problems.push({ pointer: p.pointer, problem: "not_encrypted" });
      else if (!this.keyring.has(current.kid)) problems.push({ pointer: p.pointer, problem: "unknown_key" });
      else
        try {
          decryptText(this.keyring, p.pointer, current);
        } catch {
          problems.push({ pointer: p.pointer, problem: "decrypt_failed" });
        }
    }
    return problems;
  }

  /** Blind indexes of `value` at a sealed path under every key (rows not yet rotated still match). */
  blindIndexes(sealed: SealedPath, value: unknown): string[] {
    const canonical = jsonbTextOfValue(value);
    return this.keyring.all().map((key) => blindIndex(key, sealed.pointer, canonical));
  }
}
