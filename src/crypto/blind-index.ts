import { createHmac } from "node:crypto";
import type { FieldKey } from "./keyring.ts";

/**
 * A blind index: HMAC-SHA256 of a value's jsonb canonical text (with its JSON pointer, so equal values
 * in two fields do not match) under the key's separate index key, base64url. Equal values give equal
 * indexes, so an equality lookup needs no decryption; without the index key nobody can compute one for
 * a guessed value. It does reveal which records share a value (see docs/encryption.md).
 */
export function blindIndex(key: FieldKey, pointer: string, canonical: string): string {
  return createHmac("sha256", key.index).update(`${pointer}\u0000${canonical}`, "utf8").digest("base64url");
}
