import assert from "node:assert/strict";
import { test } from "node:test";
import { redactText, redactUrl, secretsIn } from "../../../src/config/redact.ts";

test("redactUrl hides the password and password parameters", () => {
  assert.equal(redactUrl("postgres://app:s3cret@db:5432/prod"), "postgres://app:********@db:5432/prod");
  assert.equal(redactUrl("postgres://app@db/prod"), "postgres://app@db/prod");
  assert.match(
    redactUrl("postgres://db/prod?password=s3cret&sslmode=require"),
    /password=\*{8}&sslmode=require/,
  );
  assert.equal(redactUrl("host=db password=s3cret user=app"), "host=db password=******** user=app");
});

test("redactText removes URLs with passwords and named secrets", () => {
  const text = "failed: postgres://u:hunter22@h/db and again hunter22";
  const out = redactText(text, ["hunter22"]);
  assert.ok(!out.includes("hunter22"), out);
  assert.match(out, /postgres:\/\/u:\*{8}@h\/db/);
});

test("a mistyped connection string loses its password whatever it parses to", () => {
  const cases: [string, string][] = [
    ["postgres//app:s3cret@db/prod", "postgres//app:********@db/prod"],
    ["postgres:/app:s3cret@db/prod", "postgres:/app:********@db/prod"],
    ["postgres:app:s3cret@db/prod", "postgres:app:********@db/prod"],
    ["app:s3cret@db/prod", "app:********@db/prod"],
    [" postgres://app:s3cret@db/prod", " postgres://app:********@db/prod"],
    ["postgres://app:s3 cret@db/prod", "postgres://app:********@db/prod"],
    ["postgres://app:s3@cret@db/prod", "postgres://app:********@db/prod"],
    ["postgres://app:s3cret@db:99999/prod", "postgres://app:********@db:99999/prod"],
    ["mysql://app:s3cret@db/prod", "mysql://app:********@db/prod"],
    ["postgres://app@db/prod", "postgres://app@db/prod"],
  ];
  for (const [input, expected] of cases) assert.equal(redactUrl(input), expected, input);
});

test("redactText redacts credential-looking words in prose and JSON, and every form of a named secret", () => {
  const json = JSON.stringify({
    to: "postgres//u:s3cret@h/db",
    other: "x password=hunter2 y",
    password: "pw1",
  });
  const out = redactText(json);
  assert.ok(!/s3cret|hunter2|pw1/.test(out), out);
  assert.deepEqual(JSON.parse(out), {
    to: "postgres//u:********@h/db",
    other: "x password=******** y",
    password: "********",
  });
  assert.equal(redactText("contact a@b.example at 10:30"), "contact a@b.example at 10:30");
  const secret = 'p"a ss%';
  const text = `raw ${secret} json ${JSON.stringify(secret)} url ${encodeURIComponent(secret)}`;
  const scrubbed = redactText(text, secretsIn(`postgres://u:${encodeURIComponent(secret)}@h/db`));
  assert.equal(scrubbed, 'raw ******** json "********" url ********');
});

test("secretsIn finds the password of a URL given as --to=URL", () => {
  assert.ok(secretsIn("--to=postgres//u:s3cret@h/db").includes("s3cret"));
  assert.ok(secretsIn("--to=postgres://u:s%40cret@h/db").includes("s@cret"));
  assert.deepEqual(secretsIn("--to=postgres://u@h/db"), []);
});
