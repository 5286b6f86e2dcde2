import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { EncryptionKeyError } from "./crypto-errors.ts";

/**
 * The keys of field encryption, blind indexes and record MACs. A key file (or an environment variable)
 * holds JSON:
 *
 *   { "active": "k2",
 *     "keys": { "k1": { "encryption": "<base64, 32 bytes>", "index": "<base64, 32 bytes>", "mac": "<base64, 32 bytes>" },
 *               "k2": { ... } } }
 *
 * Each id has three independent 256-bit keys: AES-256-GCM for values, HMAC-SHA256 for blind indexes,
 * HMAC-SHA256 for record MACs. New values are written under `active`; older ids stay to read what was
 * written under them until `pgshift keys rotate` has moved every row. See docs/encryption.md.
 */
export interface FieldKey {
  readonly id: string;
  readonly encryption: Buffer;
  readonly index: Buffer;
  readonly mac: Buffer;
}

/** Key ids are stored with every value: short, plain, and free of the separators the formats use. */
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const KEY_BYTES = 32;
const PARTS = ["encryption", "index", "mac"] as const;

export class Keyring {
  readonly activeId: string;
  readonly #keys: ReadonlyMap<string, FieldKey>;
  /** Where the keys came from ("file keys.json", "environment variable PGSHIFT_KEYS"), for messages. */
  readonly origin: string;

  constructor(keys: readonly FieldKey[], activeId: string, origin = "the keyring") {
    const byId = new Map<string, FieldKey>();
    for (const key of keys) {
      if (byId.has(key.id)) throw new EncryptionKeyError(`${origin}: key id "${key.id}" appears twice`);
      byId.set(key.id, key);
    }
    if (!byId.has(activeId))
      throw new EncryptionKeyError(`${origin}: the active key "${activeId}" is not among its keys`, {
        ids: [...byId.keys()],
      });
    this.#keys = byId;
    this.activeId = activeId;
    this.origin = origin;
  }

  /** The key new values are written under. */
  get active(): FieldKey {
    return this.#keys.get(this.activeId)!;
  }

  /** Every key id, the active one first. */
  get ids(): string[] {
    return [this.activeId, ...[...this.#keys.keys()].filter((id) => id !== this.activeId)];
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** The key with this id; a clear error naming the id (never the material) when absent. */
  key(id: string): FieldKey {
    const key = this.#keys.get(id);
    if (!key)
      throw new EncryptionKeyError(
        `a value is encrypted under key "${id}", which ${this.origin} does not hold (it has ${this.ids.join(", ")}); add that key to read it`,
        { keyId: id },
      );
    return key;
  }

  /** Every key, the active one first. */
  all(): FieldKey[] {
    return this.ids.map((id) => this.#keys.get(id)!);
  }

  // Key material never reaches a log line, a report or JSON output, however the keyring is printed.
  toJSON(): Record<string, unknown> {
    return { active: this.activeId, ids: this.ids };
  }

  [inspect.custom](): string {
    return `Keyring { active: ${this.activeId}, ids: [${this.ids.join(", ")}] }`;
  }
}

function decodeKey(value: unknown, where: string): Buffer {
  if (typeof value !== "string")
    throw new EncryptionKeyError(`${where}: must be a base64 string of ${KEY_BYTES} bytes`);
  const bytes = Buffer.from(value, "base64");
  if (bytes.length !== KEY_BYTES || bytes.toString("base64").replace(/=+$/, "") !== value.replace(/=+$/, ""))
    throw new EncryptionKeyError(
      `${where}: must be base64 of exactly ${KEY_BYTES} random bytes (got ${bytes.length}); make one with "pgshift keys new FILE"`,
    );
  return bytes;
}

/** A keyring from key-file JSON; `origin` names the file or variable in errors. */
export function keyringFromJson(text: string, origin: string): Keyring {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // the parser's message may quote the text, which is key material: only its position is kept
    const at = /position \d+/.exec((error as Error).message)?.[0];
    throw new EncryptionKeyError(`${origin}: not valid JSON${at ? ` (at ${at})` : ""}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new EncryptionKeyError(`${origin}: must be a JSON object { "active": ID, "keys": { ID: {...} } }`);
  const { active, keys } = parsed as { active?: unknown; keys?: unknown };
  if (!keys || typeof keys !== "object" || Array.isArray(keys) || Object.keys(keys).length === 0)
    throw new EncryptionKeyError(`${origin}: "keys" must be an object with at least one key id`);
  const list: FieldKey[] = [];
  for (const [id, entry] of Object.entries(keys as Record<string, unknown>)) {
    if (!KEY_ID.test(id))
      throw new EncryptionKeyError(`${origin}: key id "${id}" must be 1-32 letters, digits, _ or -`);
    if (!entry || typeof entry !== "object")
      throw new EncryptionKeyError(`${origin}: key "${id}" must be an object with ${PARTS.join(", ")}`);
    const parts = entry as Record<string, unknown>;
    const [encryption, index, mac] = PARTS.map((part) =>
      decodeKey(parts[part], `${origin}: key "${id}".${part}`),
    );
    if (encryption!.equals(index!) || encryption!.equals(mac!) || index!.equals(mac!))
      throw new EncryptionKeyError(
        `${origin}: key "${id}" must have three different keys for ${PARTS.join(", ")}`,
      );
    list.push({ id, encryption: encryption!, index: index!, mac: mac! });
  }
  const activeId = active ?? (list.length === 1 ? list[0]!.id : undefined);
  if (typeof activeId !== "string")
    throw new EncryptionKeyError(`${origin}: "active" must name the key new values are written under`);
  return new Keyring(list, activeId, origin);
}

/**
 * The keyring a `--keys` value names: "env:VAR" (the JSON in an environment variable) or a file path.
 *
 * @example
 *   const keyring = loadKeyring("env:PGSHIFT_KEYS");
 */
export function loadKeyring(spec: string, env: NodeJS.ProcessEnv = process.env): Keyring {
  if (spec.startsWith("env:")) {
    const name = spec.slice(4);
    const value = env[name];
    if (!value) throw new EncryptionKeyError(`environment variable ${name} is not set (--keys ${spec})`);
    return keyringFromJson(value, `environment variable ${name}`);
  }
  let text: string;
  try {
    text = readFileSync(spec, "utf8");
  } catch (error) {
    throw new EncryptionKeyError(
      `cannot read key file ${spec}: ${(error as NodeJS.ErrnoException).code ?? "error"}; make one with "pgshift keys new ${spec}"`,
      { path: spec },
    );
  }
  return keyringFromJson(text, `key file ${spec}`);
}

/** Key-file JSON with a fresh random key added under `id` and made active (a new file when `existing` is undefined). */
export function addKeyToJson(existing: string | undefined, id: string, origin = "key file"): string {
  if (!KEY_ID.test(id)) throw new EncryptionKeyError(`key id "${id}" must be 1-32 letters, digits, _ or -`);
  const file =
    existing === undefined
      ? { keys: {} as Record<string, unknown> }
      : (JSON.parse(existing) as { active?: string; keys: Record<string, unknown> });
  if (existing !== undefined) keyringFromJson(existing, origin);
  if (id in file.keys)
    throw new EncryptionKeyError(`${origin} already has a key "${id}"; choose another --id`);
  file.keys[id] = Object.fromEntries(PARTS.map((part) => [part, randomBytes(KEY_BYTES).toString("base64")]));
  return `${JSON.stringify({ active: id, keys: file.keys }, null, 2)}\n`;
}

/** The next free id of the form k1, k2, ... for a key file's JSON. */
export function nextKeyId(existing: string | undefined): string {
  if (existing === undefined) return "k1";
  const ids = Object.keys((JSON.parse(existing) as { keys?: object }).keys ?? {});
  let n = ids.length + 1;
  while (ids.includes(`k${n}`)) n++;
  return `k${n}`;
}
