// `require("pgshift/cutover")`: pgshift is an ES module; Node.js 20.19+ loads it through require(esm).
// Older versions cannot, and get a message saying what to do instead of ERR_REQUIRE_ESM.
"use strict";
try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- this file is the CommonJS entry point
  module.exports = require("../dist/src/cutover/public.js");
} catch (error) {
  if (error && error.code === "ERR_REQUIRE_ESM") {
    throw new Error(
      `pgshift is an ES module: use \`import ... from "pgshift/cutover"\` (or \`await import("pgshift/cutover")\` from CommonJS), or Node.js 20.19+ where require() loads ES modules (this is ${process.version})`,
      { cause: error },
    );
  }
  throw error;
}
