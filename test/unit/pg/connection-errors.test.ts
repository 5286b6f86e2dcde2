import assert from "node:assert/strict";
import { test } from "node:test";
import { ConnectionError, isConnectionLost, sqlstateOf } from "../../../src/pg/errors.ts";
import { describeConnectionError, describeTarget } from "../../../src/pg/pool.ts";

const target = describeTarget("postgres://app:secret-pw@db.example:6543/shop");

test("socket errno names are not SQLSTATEs; wrapped losses are still losses", () => {
  const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE", errno: -32, syscall: "write" });
  assert.equal(sqlstateOf(epipe), undefined);
  assert.equal(isConnectionLost(epipe), true);
  assert.equal(sqlstateOf(Object.assign(new Error("x"), { code: "57P01" })), "57P01");
  const refused = Object.assign(new Error("connect ECONNREFUSED"), {
    code: "ECONNREFUSED",
    syscall: "connect",
  });
  assert.equal(isConnectionLost(new ConnectionError("could not connect", refused)), true);
  const badPassword = Object.assign(new Error("password authentication failed"), { code: "28P01" });
  assert.equal(isConnectionLost(new ConnectionError("could not connect", badPassword)), false);
});

test("a lost connection and a failed connect are told apart, both with host, port and database", () => {
  const terminated = Object.assign(new Error("terminating connection due to administrator command"), {
    code: "57P01",
  });
  const lost = describeConnectionError(terminated, target, ["secret-pw"]);
  assert.equal(lost?.code, "connection_lost");
  assert.equal(
    lost?.message,
    "lost the connection to db.example:6543/shop: terminating connection due to administrator command (57P01)",
  );
  const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:6543"), {
    code: "ECONNREFUSED",
    errno: -111,
    syscall: "connect",
  });
  const failed = describeConnectionError(refused, target);
  assert.equal(failed?.code, "connection_failed");
  assert.match(failed!.message, /^could not connect to db\.example:6543\/shop as app: connect ECONNREFUSED/);
  assert.equal(describeConnectionError(new Error("syntax error"), target), undefined);
  assert.doesNotMatch(JSON.stringify(failed!.toJSON()), /secret-pw/);
});
