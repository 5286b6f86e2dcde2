import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ColumnSealer, envelopeText, valueOfCanonical } from "../../../src/crypto/column-sealer.ts";
import { encryptText, type Envelope } from "../../../src/crypto/field-cipher.ts";
import { addKeyToJson, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { recordText } from "../../../src/verify/canonical.ts";
import { jsonbTextOfValue } from "../../../src/verify/canonical-json.ts";

const keyring = keyringFromJson(addKeyToJson(undefined, "k1"), "test keys");

describe("ColumnSealer", () => {
  it("writes an envelope's text exactly as jsonb prints it, with and without a blind index", () => {
    for (const bi of [undefined, "abc_-DEF"]) {
      const envelope = encryptText(keyring.active, 'column:["t","c"]', "900-00-0001", bi);
      assert.equal(envelopeText(envelope), jsonbTextOfValue(envelope));
    }
    // anything unusual goes through the general serializer
    const odd = { ...encryptText(keyring.active, "x", "y"), kid: 'a"b' } as Envelope;
    assert.equal(envelopeText(odd), jsonbTextOfValue(odd));
  });

  it("seals, opens, MACs and reseals rows; a value moved to another column does not open", () => {
    const sealer = new ColumnSealer(
      keyring,
      "patients",
      ["id", "ssn", "name"],
      [
        { name: "ssn", originalType: "text", blindIndex: true },
        { name: "name", originalType: "text", blindIndex: false },
      ],
      ["id"],
      true,
    );
    const stored = sealer.sealRow(["7", "900-00-0007", null]);
    assert.equal(stored[2], null);
    assert.match(stored[1]!, /^\{"bi": "[\w-]+", "ct": /);
    assert.deepEqual(sealer.openRow(stored), ["7", "900-00-0007", null]);
    assert.deepEqual(sealer.fieldProblems(stored), []);
    assert.deepEqual(sealer.fieldProblems(["7", "900-00-0007", stored[1]!]), [
      { pointer: "ssn", problem: "not_encrypted" },
      { pointer: "name", problem: "decrypt_failed" },
    ]);
    assert.match(sealer.mac(stored), /^k1:[\w-]{43}$/);
    assert.equal(sealer.macText(stored), recordText(stored));
    assert.deepEqual(sealer.reseal(stored).changed, []);
    const next = keyringFromJson(addKeyToJson(addKeyToJson(undefined, "k1"), "k2"), "two");
    assert.throws(() =>
      new ColumnSealer(next, "patients", ["id", "ssn", "name"], sealer.encrypted, ["id"], true).reseal(
        stored,
      ),
    );
  });

  it("parses decrypted text as node-postgres parses the original type", () => {
    assert.equal(
      valueOfCanonical(
        { name: "n", originalType: "numeric(10,2)", originalOid: 1700, blindIndex: false },
        "100.5",
      ),
      "100.50",
    );
    assert.deepEqual(
      valueOfCanonical({ name: "b", originalType: "bytea", originalOid: 17, blindIndex: false }, "00ff"),
      Buffer.from([0, 255]),
    );
    assert.equal(
      valueOfCanonical({ name: "i", originalType: "integer", originalOid: 23, blindIndex: false }, "42"),
      42,
    );
    assert.equal(valueOfCanonical({ name: "t", originalType: "text", blindIndex: false }, "x"), "x");
  });
});
