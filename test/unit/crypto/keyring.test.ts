import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { inspect } from "node:util";
import { EncryptionKeyError } from "../../../src/crypto/crypto-errors.ts";
import { addKeyToJson, keyringFromJson, loadKeyring, nextKeyId } from "../../../src/crypto/keyring.ts";

const b64 = () => randomBytes(32).toString("base64");

function keyFile(ids: string[], active?: string): string {
  return JSON.stringify({
    ...(active ? { active } : {}),
    keys: Object.fromEntries(ids.map((id) => [id, { encryption: b64(), index: b64(), mac: b64() }])),
  });
}

test("a key file with two keys: the active one first, material never printed", () => {
  const text = keyFile(["k1", "k2"], "k2");
  const keyring = keyringFromJson(text, "key file keys.json");
  assert.equal(keyring.activeId, "k2");
  assert.deepEqual(keyring.ids, ["k2", "k1"]);
  assert.equal(keyring.active.encryption.length, 32);
  const secrets = Object.values(JSON.parse(text).keys as Record<string, Record<string, string>>).flatMap(
    (k) => Object.values(k),
  );
  const printed = [JSON.stringify(keyring), inspect(keyring), String(keyring), JSON.stringify({ keyring })];
  for (const out of printed) for (const secret of secrets) assert.ok(!out.includes(secret), out);
  assert.deepEqual(JSON.parse(JSON.stringify(keyring)), { active: "k2", ids: ["k2", "k1"] });
});

test("one key needs no active; a missing key id is a clear error naming the id", () => {
  const keyring = keyringFromJson(keyFile(["only"]), "env PGSHIFT_KEYS");
  assert.equal(keyring.activeId, "only");
  assert.throws(
    () => keyring.key("k9"),
    (error: unknown) => {
      assert.ok(error instanceof EncryptionKeyError);
      assert.match(error.message, /key "k9", which env PGSHIFT_KEYS does not hold \(it has only\)/);
      return true;
    },
  );
});

test("malformed key files: every error says where and what, and quotes no key material", () => {
  const secret = b64();
  const cases: [string, RegExp][] = [
    [`{"keys": {"k1": {"encryption": "${secret}"`, /not valid JSON/],
    ["[]", /must be a JSON object/],
    ['{"keys": {}}', /at least one key id/],
    [`{"keys": {"bad id": {"encryption": "${secret}"}}}`, /key id "bad id" must be/],
    [
      `{"keys": {"k1": {"encryption": "${secret}", "index": "c2hvcnQ=", "mac": "${b64()}"}}}`,
      /k1"\.index: must be base64 of exactly 32/,
    ],
    [
      `{"keys": {"k1": {"encryption": "${secret}", "index": "${secret}", "mac": "${b64()}"}}}`,
      /three different keys/,
    ],
    [keyFile(["k1", "k2"]), /"active" must name/],
    [keyFile(["k1"], "k3"), /active key "k3" is not among its keys/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => keyringFromJson(text, "key file k.json"),
      (error: unknown) => {
        assert.ok(error instanceof EncryptionKeyError, String(error));
        assert.match(error.message, expected);
        assert.match(error.message, /^key file k\.json/);
        assert.ok(!error.message.includes(secret));
        return true;
      },
    );
  }
});

test("loadKeyring: env:VAR and files; absent ones are clear errors", () => {
  const text = keyFile(["k1"]);
  assert.equal(loadKeyring("env:MY_KEYS", { MY_KEYS: text }).activeId, "k1");
  assert.throws(() => loadKeyring("env:MY_KEYS", {}), /environment variable MY_KEYS is not set/);
  assert.throws(
    () => loadKeyring("/nonexistent/keys.json"),
    /cannot read key file \/nonexistent\/keys\.json: ENOENT/,
  );
});

test("addKeyToJson makes a new file, then adds a key and makes it active", () => {
  const first = addKeyToJson(undefined, nextKeyId(undefined));
  assert.equal(keyringFromJson(first, "f").activeId, "k1");
  const second = addKeyToJson(first, nextKeyId(first));
  const keyring = keyringFromJson(second, "f");
  assert.deepEqual(keyring.ids, ["k2", "k1"]);
  assert.ok(!keyring.key("k1").encryption.equals(keyring.key("k2").encryption));
  assert.throws(() => addKeyToJson(second, "k1"), /already has a key "k1"/);
});
