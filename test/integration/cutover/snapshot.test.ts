import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type CutoverStore,
  PhaseChangeRefusedError,
  SnapshotChecksumError,
  cutoverHistory,
  listSnapshots,
  restoreLegacyFromSnapshot,
} from "../../../src/cutover/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type KvStore, kvAccess, MemoryKv, PgKv, kvCutover } from "./kv-stores.ts";

const db = useTestDatabase("cutover_snapshot");

describe("final snapshot of legacy before next-only", () => {
  let dir: string;
  let legacy: MemoryKv;
  let store: CutoverStore<KvStore>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgshift-snapshot-"));
    legacy = new MemoryKv();
    const next = new PgKv(db().pool, "kv_snap");
    await next.ensure();
    store = await kvCutover(
      db().pool,
      "snap",
      { legacy, next },
      {
        initialPhase: "next-primary",
        env: {},
      },
    );
    for (let i = 0; i < 300; i++)
      await store.put(`task-${i}`, {
        id: i,
        title: `task ${i} — ünïcode`,
        tags: ["a", i % 7],
        nested: { z: 1, a: [null, true] },
      });
    await store.delete("task-5");
    await store.cutover.reportHealth();
  });

  after(async () => {
    await store.cutover.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("next-only is refused without a snapshot", async () => {
    await assert.rejects(store.cutover.setPhase("next-only"), (error: unknown) => {
      assert.ok(error instanceof PhaseChangeRefusedError);
      assert.match(error.message, /no final snapshot of legacy is recorded/);
      return true;
    });
  });

  test("a snapshot older than the last legacy write does not count; forcing needs a reason", async () => {
    const first = await store.cutover.snapshot({ to: join(dir, "first.ndjson") });
    assert.equal(first.records, 299);
    await store.put("task-late", { id: "late" });
    await store.cutover.reportHealth();
    await assert.rejects(store.cutover.setPhase("next-only"), /is older than the last legacy write/);
    await assert.rejects(store.cutover.setPhase("next-only", { force: true }), /without a reason/);
    assert.equal(store.cutover.phase, "next-primary");
  });

  test("a fresh snapshot records count and sha256, and next-only is allowed", async () => {
    const path = join(dir, "final.ndjson");
    const snapshot = await store.cutover.snapshot({ to: path });
    const bytes = await readFile(path);
    assert.equal(snapshot.records, 300);
    assert.equal(snapshot.bytes, bytes.length);
    assert.equal(bytes.toString("utf8").trimEnd().split("\n").length, 300);
    const { createHash } = await import("node:crypto");
    assert.equal(snapshot.sha256, createHash("sha256").update(bytes).digest("hex"));
    assert.deepEqual(
      (await listSnapshots(db().pool, "snap")).map((s) => s.records),
      [299, 300],
    );
    const change = await store.cutover.setPhase("next-only", { reason: "memory retired" });
    assert.equal(change.to, "next-only");
    assert.equal(change.forced, false);
    assert.equal((await cutoverHistory(db().pool, "snap")).at(-1)!.to, "next-only");
  });

  test("restoring from the snapshot gives a legacy store whose snapshot is byte-identical", async () => {
    const path = join(dir, "final.ndjson");
    const restored = new MemoryKv();
    const result = await restoreLegacyFromSnapshot({
      pool: db().pool,
      cutover: "snap",
      legacy: restored,
      access: kvAccess,
      from: path,
    });
    assert.equal(result.records, 300);
    assert.deepEqual([...restored.map.entries()], [...legacy.map.entries()]);
    const { takeSnapshot } = await import("../../../src/cutover/snapshot.ts");
    const again = await takeSnapshot({
      pool: db().pool,
      cutover: "snap",
      phase: "next-only",
      legacy: restored,
      access: kvAccess,
      to: join(dir, "again.ndjson"),
    });
    assert.ok((await readFile(join(dir, "again.ndjson"))).equals(await readFile(path)));
    assert.equal(again.sha256, result.sha256);
  });

  test("a snapshot file that changed is refused", async () => {
    const tampered = join(dir, "tampered.ndjson");
    const text = await readFile(join(dir, "final.ndjson"), "utf8");
    await writeFile(tampered, text.replace('"id":1,', '"id":100,'));
    await assert.rejects(
      restoreLegacyFromSnapshot({
        pool: db().pool,
        cutover: "snap",
        legacy: new MemoryKv(),
        access: kvAccess,
        from: tampered,
      }),
      (error: unknown) =>
        error instanceof SnapshotChecksumError && error.code === "snapshot_checksum_mismatch",
    );
  });
});
