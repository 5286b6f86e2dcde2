import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { DecryptionError } from "./crypto-errors.ts";
import type { FieldKey, Keyring } from "./keyring.ts";

/**
 * Client-side AES-256-GCM for one JSON value. The value's jsonb canonical text is encrypted with a
 * fresh 96-bit IV; the additional authenticated data binds the ciphertext to its format version, key id
 * and JSON pointer, so a ciphertext moved to another field, or relabelled with another key id, fails
 * to decrypt. The envelope replaces the value in the stored document:
 *
 *   {"$pgshift_enc": 1, "kid": "k1", "iv": "...", "ct": "...", "tag": "...", "bi": "..."}
 *
 * (base64; `bi` is the blind index, present only for paths that have one). Why client side and not
 * pgcrypto: docs/encryption.md.
 */
export const ENVELOPE_MARK = "$pgshift_enc";
export const ENVELOPE_VERSION = 1;

export interface Envelope {
  [ENVELOPE_MARK]: typeof ENVELOPE_VERSION;
  kid: string;
  iv: string;
  ct: string;
  tag: string;
  bi?: string;
}

const IV_BYTES = 12;
/** IVs are cut from one CSPRNG draw at a time (each slice used once): a call per value costs more than the cipher. */
const IV_POOL_BYTES = IV_BYTES * 4096;
let ivPool = Buffer.alloc(0);
let ivAt = 0;

function freshIv(): Buffer {
  if (ivAt + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES);
    ivAt = 0;
  }
  const iv = ivPool.subarray(ivAt, ivAt + IV_BYTES);
  ivAt += IV_BYTES;
  return iv;
}

function aad(kid: string, pointer: string): Buffer {
  return Buffer.from(`pgshift-field-v${ENVELOPE_VERSION}\u0000${kid}\u0000${pointer}`, "utf8");
}

/** Whether a stored value is an envelope (and not data that happens to be an object). */
export function isEnvelope(value: unknown): value is Envelope {
  return (
    value !== null &&
    typeof value === "object" &&
    (value as Record<string, unknown>)[ENVELOPE_MARK] === ENVELOPE_VERSION &&
    typeof (value as Envelope).kid === "string" &&
    typeof (value as Envelope).ct === "string"
  );
}

/** The envelope of a value given as its jsonb canonical text. */
export function encryptText(
  key: FieldKey,
  pointer: string,
  canonical: string,
  blindIndex?: string,
): Envelope {
  const iv = freshIv();
  const cipher = createCipheriv("aes-256-gcm", key.encryption, iv);
  cipher.setAAD(aad(key.id, pointer));
  const ct = Buffer.concat([cipher.update(canonical, "utf8"), cipher.final()]);
  const envelope: Envelope = {
    [ENVELOPE_MARK]: ENVELOPE_VERSION,
    kid: key.id,
    iv: iv.toString("base64"),
    ct: ct.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
  };
  if (blindIndex !== undefined) envelope.bi = blindIndex;
  return envelope;
}

/** The canonical text an envelope holds; DecryptionError when it does not authenticate. */
export function decryptText(keyring: Keyring, pointer: string, envelope: Envelope): string {
  const key = keyring.key(envelope.kid);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.encryption, Buffer.from(envelope.iv, "base64"));
    decipher.setAAD(aad(key.id, pointer));
    decipher.setAuthTag(Buffer.from(envelope.tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(envelope.ct, "base64")), decipher.final()]).toString(
      "utf8",
    );
  } catch (error) {
    throw new DecryptionError(
      `the value at ${pointer} does not decrypt under key "${envelope.kid}": it was changed, or ${keyring.origin} holds another key under that id`,
      { pointer, keyId: envelope.kid, cause: (error as Error).message },
    );
  }
}

/** The JSON value an envelope holds. */
export function decryptValue(keyring: Keyring, pointer: string, envelope: Envelope): unknown {
  return JSON.parse(decryptText(keyring, pointer, envelope)) as unknown;
}
