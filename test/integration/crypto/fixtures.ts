import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { addKeyToJson, type Keyring, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { tempDir } from "../documents/fixtures.ts";

/** Patients with two sensitive fields (/ssn, /patient/name); P003 and P007 share an SSN. */
export function patients(count = 12): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `P${String(i).padStart(3, "0")}`,
    ssn: i === 7 ? "900-00-0003" : `900-00-${String(i).padStart(4, "0")}`,
    patient: { name: `Patient Name ${i}`, born: 1950 + i },
    city: i % 2 === 0 ? "Lyon" : "Graz",
    score: 1.5 + i,
  }));
}

/** A key file with keys k1..kn (the last active), its JSON, and its keyring. */
export async function keyFile(
  count = 1,
): Promise<{ path: string; json: string; keyring: Keyring; dir: string }> {
  let json: string | undefined;
  for (let n = 1; n <= count; n++) json = addKeyToJson(json, `k${n}`);
  const dir = await tempDir("pgshift-keys-");
  const path = join(dir, "keys.json");
  await writeFile(path, json!, { mode: 0o600 });
  return { path, json: json!, keyring: keyringFromJson(json!, `key file ${path}`), dir };
}

/** Every base64 key material string of a key file's JSON. */
export function keyMaterial(json: string): string[] {
  const keys = (JSON.parse(json) as { keys: Record<string, Record<string, string>> }).keys;
  return Object.values(keys).flatMap((k) => Object.values(k));
}
