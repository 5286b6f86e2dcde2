import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { blindIndex } from "../../../src/crypto/blind-index.ts";
import { DecryptionError, EncryptionKeyError } from "../../../src/crypto/crypto-errors.ts";
import { DocumentSealer } from "../../../src/crypto/document-sealer.ts";
import { decryptText, encryptText, isEnvelope } from "../../../src/crypto/field-cipher.ts";
import { type FieldKey, Keyring } from "../../../src/crypto/keyring.ts";
import { checkRecordMac, recordMac } from "../../../src/crypto/record-mac.ts";
import { jsonbText } from "../../../src/verify/canonical-json.ts";

function key(id: string): FieldKey {
  return { id, encryption: randomBytes(32), index: randomBytes(32), mac: randomBytes(32) };
}
const k1 = key("k1");
const k2 = key("k2");
const ring1 = new Keyring([k1], "k1");
const ring12 = new Keyring([k1, k2], "k2");

test("AES-256-GCM envelopes: round trip, fresh IV each time, tamper and relabel detected", () => {
  const a = encryptText(k1, "/ssn", '"123-45-6789"');
  const b = encryptText(k1, "/ssn", '"123-45-6789"');
  assert.ok(isEnvelope(a));
  assert.notEqual(a.ct, b.ct);
  assert.notEqual(a.iv, b.iv);
  assert.equal(decryptText(ring1, "/ssn", a), '"123-45-6789"');
  const flipped = Buffer.from(a.ct, "base64");
  flipped[0]! ^= 1;
  assert.throws(() => decryptText(ring1, "/ssn", { ...a, ct: flipped.toString("base64") }), DecryptionError);
  // moved to another field: the pointer is authenticated data
  assert.throws(() => decryptText(ring1, "/name", a), /does not decrypt under key "k1"/);
  // a keyring holding another key under the same id
  assert.throws(() => decryptText(new Keyring([key("k1")], "k1"), "/ssn", a), DecryptionError);
  assert.throws(() => decryptText(new Keyring([k2], "k2"), "/ssn", a), EncryptionKeyError);
});

test("blind index: deterministic per key and pointer, differs across keys and fields", () => {
  assert.equal(blindIndex(k1, "/ssn", '"1"'), blindIndex(k1, "/ssn", '"1"'));
  assert.notEqual(blindIndex(k1, "/ssn", '"1"'), blindIndex(k2, "/ssn", '"1"'));
  assert.notEqual(blindIndex(k1, "/ssn", '"1"'), blindIndex(k1, "/tax_id", '"1"'));
});

test("record MAC: checks, and names what is wrong", () => {
  const mac = recordMac(k1, ["7"], '{"a": 1}');
  assert.match(mac, /^k1:[A-Za-z0-9_-]{43}$/);
  assert.equal(checkRecordMac(ring1, ["7"], '{"a": 1}', mac), "ok");
  assert.equal(checkRecordMac(ring1, ["7"], '{"a": 2}', mac), "mismatch");
  assert.equal(checkRecordMac(ring1, ["8"], '{"a": 1}', mac), "mismatch");
  assert.equal(checkRecordMac(ring1, ["7"], '{"a": 1}', null), "missing");
  assert.equal(checkRecordMac(ring1, ["7"], '{"a": 1}', "nocolon"), "malformed");
  assert.equal(checkRecordMac(new Keyring([k2], "k2"), ["7"], '{"a": 1}', mac), "unknown_key");
});

test("seal splices envelopes into the source text: other numbers keep their digits and scale", () => {
  const sealer = DocumentSealer.from({
    keyring: ring1,
    encryptedPaths: ["/ssn", "/patient/name"],
    blindIndexPaths: ["/ssn"],
    integrity: true,
  })!;
  const text =
    '{"id": 1, "ssn": "123-45-6789", "price": 1.50, "big": 12345678901234567890, "patient": {"name": {"first": "Ada"}, "age": 36}}';
  const value = JSON.parse(text) as Record<string, unknown>;
  const sealed = sealer.seal(value, text);
  assert.ok(!sealed.text.includes("123-45-6789"));
  assert.ok(!sealed.text.includes("Ada"));
  assert.match(sealed.text, /"price": 1\.50, "big": 12345678901234567890/);
  const parsed = JSON.parse(sealed.text);
  assert.ok(isEnvelope(parsed.ssn) && parsed.ssn.bi !== undefined);
  assert.ok(isEnvelope(parsed.patient.name) && parsed.patient.name.bi === undefined);
  assert.deepEqual(sealed.value.id, 1);
  // opening gives the document back; the input object was not changed
  assert.deepEqual(sealer.open(parsed), JSON.parse(text));
  assert.equal(value.ssn, "123-45-6789");
  assert.deepEqual(sealer.fieldProblems(parsed), []);
  assert.deepEqual(sealer.fieldProblems(JSON.parse(text)), [
    { pointer: "/ssn", problem: "not_encrypted" },
    { pointer: "/patient/name", problem: "not_encrypted" },
  ]);
  // absent fields stay absent
  assert.equal(sealer.seal({ id: 2 }, '{"id": 2}').text, '{"id": 2}');
});

test("reseal moves envelopes to the active key, leaves everything else as it was", () => {
  const old = DocumentSealer.from({ keyring: ring1, encryptedPaths: ["/ssn"], blindIndexPaths: ["/ssn"] })!;
  const stored = old.seal({ ssn: "1", n: 1.5 }, '{"n": 1.50, "ssn": "1"}').text;
  const rotating = DocumentSealer.from({
    keyring: ring12,
    encryptedPaths: ["/ssn"],
    blindIndexPaths: ["/ssn"],
  })!;
  const moved = rotating.reseal(stored);
  assert.equal(moved.changed, true);
  const doc = JSON.parse(moved.text);
  assert.equal(doc.ssn.kid, "k2");
  assert.equal(doc.ssn.bi, blindIndex(k2, "/ssn", '"1"'));
  assert.match(moved.text, /^\{"n": 1\.50, "ssn": /);
  assert.deepEqual(rotating.open(doc), { n: 1.5, ssn: "1" });
  assert.equal(rotating.reseal(moved.text).changed, false);
  assert.deepEqual(rotating.blindIndexes(rotating.pathAt("/ssn")!, "1"), [
    blindIndex(k2, "/ssn", '"1"'),
    blindIndex(k1, "/ssn", '"1"'),
  ]);
});

test("options are validated: keys required, overlapping and exposed paths refused", () => {
  assert.equal(DocumentSealer.from({}), undefined);
  assert.throws(() => DocumentSealer.from({ encryptedPaths: ["/ssn"] }), /need keys: pass --keys/);
  assert.throws(
    () => DocumentSealer.from({ keyring: ring1, encryptedPaths: ["/a", "/a/b"] }),
    /overlap; encrypt \/a alone/,
  );
  assert.throws(
    () => DocumentSealer.from({ keyring: ring1, encryptedPaths: ["/a"], blindIndexPaths: ["/b"] }),
    /blind index is for an encrypted path/,
  );
  assert.throws(() => DocumentSealer.from({ keyring: ring1, encryptedPaths: [""] }), /name a field/);
  const sealer = DocumentSealer.from({ keyring: ring1, encryptedPaths: ["/patient"] })!;
  assert.throws(
    () => sealer.assertNotExposed([{ what: "--key /patient/id", path: ["patient", "id"] }]),
    /--key \/patient\/id reads \/patient\/id, which overlaps the encrypted \/patient/,
  );
});

test("seal writes the canonical text when no number's form matters, splices otherwise; both open alike", () => {
  const sealer = DocumentSealer.from({ keyring: ring1, encryptedPaths: ["/ssn"], integrity: true })!;
  // "1.10" and the date are inside strings: the parsed value says everything
  const plainText = '{"v": "1.10", "ssn": "1", "when": "2024-01-10", "n": 3}';
  const fast = sealer.seal(JSON.parse(plainText), plainText);
  assert.equal(typeof fast.canonical, "string");
  assert.equal(fast.text, fast.canonical);
  assert.equal(jsonbText(fast.text), fast.canonical);
  assert.deepEqual(sealer.open(JSON.parse(fast.text)), JSON.parse(plainText));
  // a number written 1.50: jsonb keeps the scale, so the text is spliced and the MAC parses it
  const scaled = '{"ssn": "1", "price": 1.50}';
  const spliced = sealer.seal(JSON.parse(scaled), scaled);
  assert.equal(spliced.canonical, undefined);
  assert.match(spliced.text, /"price": 1\.50\}$/);
  const mac = sealer.mac(["k"], spliced.value, spliced.text);
  assert.equal(checkRecordMac(ring1, ["k"], jsonbText(spliced.text), mac), "ok");
  assert.equal(
    checkRecordMac(
      ring1,
      ["k"],
      jsonbText(fast.text),
      sealer.mac(["k"], fast.value, fast.text, fast.canonical),
    ),
    "ok",
  );
});
