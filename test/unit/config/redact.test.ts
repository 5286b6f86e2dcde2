import assert from "node:assert/strict";
import { test } from "node:test";
import { redactText, redactUrl } from "../../../src/config/redact.ts";

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
