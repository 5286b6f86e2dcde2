import { createHash } from "node:crypto";
import { canonicalJson } from "../cutover/canonical-json.ts";

const MODULUS = 1n << 128n;

/**
 * An order-independent content fingerprint: the sum (mod 2^128) of a hash per (key, record). Pages may
 * arrive in any order and a resumed pull adds the rest to the saved sum; the same records give the same
 * fingerprint however they were fetched. Records are hashed as canonical JSON (keys sorted), so a copy read
 * back from jsonb (which reorders keys) fingerprints the same as the API's text.
 */
export class ContentFingerprint {
  private sum: bigint;

  constructor(saved = "0") {
    this.sum = BigInt(`0x${saved.replace(/^0x/, "") || "0"}`);
  }

  add(key: string, record: unknown): void {
    const digest = createHash("sha256").update(key).update("\n").update(canonicalJson(record)).digest();
    this.sum = (this.sum + BigInt(`0x${digest.subarray(0, 16).toString("hex")}`)) % MODULUS;
  }

  /** 32 hex digits. */
  toString(): string {
    return this.sum.toString(16).padStart(32, "0");
  }
}
