import assert from "node:assert/strict";
import { test } from "node:test";
import { ShadowQueue } from "../../../src/cutover/shadow-queue.ts";

/** A job runner whose jobs finish only when the test says so. */
function gatedRunner() {
  const started: number[] = [];
  const finish = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  const run = (job: number) =>
    new Promise<void>((resolve, reject) => {
      started.push(job);
      finish.set(job, { resolve, reject });
    });
  return { started, finish, run };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("jobs start after the offering code and its microtasks, all of one turn in one batch", async () => {
  const runner = gatedRunner();
  const queue = new ShadowQueue<number>(10, runner.run, () => assert.fail("no failure expected"));
  for (let job = 1; job <= 3; job++) assert.equal(queue.offer(job), true);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  assert.deepEqual(runner.started, [], "nothing runs on the offering path");
  await turn();
  assert.deepEqual(runner.started, [1, 2, 3]);
  assert.equal(queue.size, 3);
  for (const job of [1, 2, 3]) runner.finish.get(job)!.resolve();
  await queue.idle();
  assert.equal(queue.size, 0);
});

test("a full queue refuses jobs (queued and running count together) until slots free up", async () => {
  const runner = gatedRunner();
  const queue = new ShadowQueue<number>(2, runner.run, () => undefined);
  assert.deepEqual(
    [1, 2, 3].map((job) => queue.offer(job)),
    [true, true, false],
  );
  await turn();
  assert.deepEqual(runner.started, [1, 2]);
  assert.equal(queue.offer(4), false, "two still running: no room");
  runner.finish.get(1)!.resolve();
  await turn();
  assert.equal(queue.offer(5), true);
  await turn();
  assert.deepEqual(runner.started, [1, 2, 5]);
  let idle = false;
  const waiting = queue.idle().then(() => (idle = true));
  runner.finish.get(2)!.resolve();
  await turn();
  assert.equal(idle, false, "job 5 still running");
  runner.finish.get(5)!.resolve();
  await waiting;
  assert.equal(queue.size, 0);
});

test("a job that rejects or throws is reported and frees its slot", async () => {
  const failures: [string, number][] = [];
  const queue = new ShadowQueue<number>(
    2,
    async () => {
      throw new Error("rejected");
    },
    (error, job) => failures.push([(error as Error).message, job]),
  );
  const throwing = new ShadowQueue<number>(
    1,
    () => {
      throw new Error("thrown");
    },
    (error, job) => failures.push([(error as Error).message, job]),
  );
  queue.offer(1);
  throwing.offer(7);
  await Promise.all([queue.idle(), throwing.idle()]);
  assert.deepEqual(failures, [
    ["rejected", 1],
    ["thrown", 7],
  ]);
  assert.equal(throwing.offer(8), true, "the slot is free again");
  await throwing.idle();
});

const immediatesKeepingAlive = () =>
  process.getActiveResourcesInfo().filter((resource) => resource === "Immediate").length;

test("after a batch the drain stays armed without keeping the process alive, then disarms", async () => {
  const ran: number[] = [];
  const queue = new ShadowQueue<number>(
    10,
    async (job) => {
      ran.push(job);
    },
    () => undefined,
    3,
  );
  const baseline = immediatesKeepingAlive();
  queue.offer(1);
  assert.equal(immediatesKeepingAlive(), baseline + 1, "the first offer arms a ref'd drain");
  await queue.idle();
  assert.deepEqual(ran, [1]);
  assert.equal(queue.armed, true);
  assert.equal(immediatesKeepingAlive(), baseline, "the re-armed drain is unref'd");
  queue.offer(2);
  assert.equal(immediatesKeepingAlive(), baseline, "an offer to an armed queue schedules nothing");
  await turn();
  assert.deepEqual(ran, [1, 2], "drained in the same loop turn as the offer");
  for (let i = 0; i < 3; i++) await turn();
  assert.equal(queue.armed, false, "three turns without a job disarm it");
  queue.offer(3);
  await queue.idle();
  assert.deepEqual(ran, [1, 2, 3]);
});

test("a job offered after the drain ran in the same check phase runs next turn; idle() does not wait for traffic", async () => {
  const ran: number[] = [];
  const queue = new ShadowQueue<number>(
    10,
    async (job) => {
      ran.push(job);
    },
    () => undefined,
  );
  queue.offer(1);
  await queue.idle();
  // The armed drain was scheduled before this Immediate, so it has run (empty) when this one offers.
  const offered = new Promise<void>((resolve) =>
    setImmediate(() => {
      queue.offer(2);
      resolve();
    }),
  );
  await offered;
  assert.deepEqual(ran, [1], "not in this check phase");
  await queue.idle();
  assert.deepEqual(ran, [1, 2]);
});

test("at most `concurrency` jobs run at once; queued ones start as running ones finish, failures included", async () => {
  const runner = gatedRunner();
  const failures: number[] = [];
  const queue = new ShadowQueue<number>(10, runner.run, (_error, job) => failures.push(job), 8, 2);
  for (let job = 1; job <= 5; job++) assert.equal(queue.offer(job), true);
  await turn();
  assert.deepEqual(runner.started, [1, 2], "two run, three wait");
  assert.equal(queue.size, 5, "waiting jobs still count against the capacity");
  runner.finish.get(1)!.resolve();
  await turn();
  assert.deepEqual(runner.started, [1, 2, 3]);
  runner.finish.get(2)!.reject(new Error("next is down"));
  await turn();
  assert.deepEqual(runner.started, [1, 2, 3, 4]);
  assert.deepEqual(failures, [2]);
  for (const job of [3, 4]) runner.finish.get(job)!.resolve();
  await turn();
  assert.deepEqual(runner.started, [1, 2, 3, 4, 5]);
  runner.finish.get(5)!.resolve();
  await queue.idle();
  assert.equal(queue.size, 0);
});
