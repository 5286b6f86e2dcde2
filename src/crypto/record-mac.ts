import { createHmac, timingSafeEqual } from "node:crypto";
import type { FieldKey, Keyring } from "./keyring.ts";

/**
 * A keyed record checksum: HMAC-SHA256 under the key's MAC key over the row's key values (as
 * PostgreSQL prints them, `key::text`) and the stored document's jsonb canonical text (what
 * PostgreSQL prints for `doc::text`; see src/verify/canonical-json.ts). Stored as "kid:base64url" in
 * the `record_mac` column next to `content_hash`. Unlike content_hash, nobody without the key can
 * recompute it after changing a row, and a document moved to another key does not check either.
 */
export const RECORD_MAC_COLUMN = "record_mac";

function macBytes(key: FieldKey, keyTexts: readonly string[], canonicalDoc: string): Buffer {
  return createHmac("sha256", key.mac)
    .update(`pgshift-record-v1\u0000${JSON.stringify(keyTexts)}\u0000${canonicalDoc}`, "utf8")
    .digest();
}

export function recordMac(key: FieldKey, keyTexts: readonly string[], canonicalDoc: string): string {
  return `${key.id}:${macBytes(key, keyTexts, canonicalDoc).toString("base64url")}`;
}

export type MacCheck = "ok" | "missing" | "malformed" | "unknown_key" | "mismatch";

/** Whether a stored MAC matches the row; `unknown_key` when its key id is not in the keyring. */
export function checkRecordMac(
  keyring: Keyring,
  keyTexts: readonly string[],
  canonicalDoc: string,
  stored: string | null | undefined,
): MacCheck {
  if (stored === null || stored === undefined || stored === "") return "missing";
  const colon = stored.indexOf(":");
  if (colon <= 0) return "malformed";
  const id = stored.slice(0, colon);
  if (!keyring.has(id)) return "unknown_key";
  const given = Buffer.from(stored.slice(colon + 1), "base64url");
  const expected = macBytes(keyring.key(id), keyTexts, canonicalDoc);
  return given.length === expected.length && timingSafeEqual(given, expected) ? "ok" : "mismatch";
}

/** The key id of a stored MAC ("k1:..." -> "k1"). */
export function macKeyId(stored: string | null | undefined): string | undefined {
  const colon = stored?.indexOf(":") ?? -1;
  return colon > 0 ? stored!.slice(0, colon) : undefined;
}
