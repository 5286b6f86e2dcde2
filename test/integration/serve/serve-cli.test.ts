import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { it } from "node:test";
import { PGSHIFT_BIN } from "../../helpers/cli.ts";
import { serverUrl } from "../../helpers/database.ts";

it("pgshift serve answers /livez, /readyz and /metrics for --to, and stops with exit 0 on SIGTERM", async () => {
  const child = spawn(process.execPath, [PGSHIFT_BIN, "serve", "--to", serverUrl(), "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no serving line: ${stderr}`)), 30_000);
    child.stderr.on("data", (d) => {
      stderr += d;
      const match = /serving (http:\/\/[^/\s]+)\/livez/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  });
  try {
    assert.equal((await fetch(`${url}/livez`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, "pass");
    assert.match(await (await fetch(`${url}/metrics`)).text(), /^pg_up 1$/m);
    assert.ok(!stderr.includes(new URL(serverUrl()).password || "\u0000"), "the password is never printed");
  } finally {
    child.kill("SIGTERM");
  }
  const [code] = await once(child, "close");
  assert.equal(code, 0, stderr);
});
