import assert from "node:assert/strict";
import { type CheckpointResult, CheckpointScheduler } from "../lib/checkpoint.ts";

/** A checkpoint run that finishes only when the test says so, recording overlaps. */
function controlledRuns() {
  const gates: PromiseWithResolvers<void>[] = [];
  const state = { running: 0, maxRunning: 0, started: 0 };
  const run = async (): Promise<CheckpointResult> => {
    state.running++;
    state.started++;
    state.maxRunning = Math.max(state.maxRunning, state.running);
    const gate = Promise.withResolvers<void>();
    gates.push(gate);
    await gate.promise;
    state.running--;
    return { rows: state.started, bytes: 1, exportMs: 0, at: new Date(), upload: null };
  };
  const release = async () => {
    while (gates.length === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    gates.shift()!.resolve();
  };
  return { run, release, state };
}

Deno.test("requests made while a checkpoint runs fold into one more; none overlap", async () => {
  const { run, release, state } = controlledRuns();
  const results: (CheckpointResult | Error)[] = [];
  const scheduler = new CheckpointScheduler(run, (r) => results.push(r), { minIntervalMs: 0 });
  scheduler.request();
  for (let i = 0; i < 50; i++) scheduler.request();
  await release(); // the first; the 50 requests made meanwhile fold into one follow-up
  await release();
  const final = scheduler.finish();
  await release();
  const last = await final;
  assert.equal(state.started, 3);
  assert.equal(state.maxRunning, 1);
  assert.equal(results.length, 3);
  assert.ok(!(last instanceof Error));
  assert.equal(last.rows, 3);
});

Deno.test("finish waits for the running checkpoint, then runs the final one alone", async () => {
  const { run, release, state } = controlledRuns();
  const scheduler = new CheckpointScheduler(run, () => {}, { minIntervalMs: 0 });
  scheduler.request();
  scheduler.request(); // folded into a follow-up that finish() makes the final one
  const final = scheduler.finish();
  await release();
  await release();
  await final;
  assert.equal(state.started, 2);
  assert.equal(state.maxRunning, 1);
});

Deno.test("checkpoints wait out the interval; finish does not", async () => {
  const { run, release, state } = controlledRuns();
  const scheduler = new CheckpointScheduler(run, () => {}, { minIntervalMs: 60_000 });
  scheduler.request(); // due only a minute after the scheduler was made
  const final = scheduler.finish();
  await release();
  await final;
  assert.equal(state.started, 1);
});

Deno.test("a failed checkpoint is reported and the next one still runs", async () => {
  let calls = 0;
  const results: (CheckpointResult | Error)[] = [];
  const scheduler = new CheckpointScheduler(
    () => {
      calls++;
      return calls === 1
        ? Promise.reject(new Error("disk full"))
        : Promise.resolve({ rows: 1, bytes: 1, exportMs: 0, at: new Date(), upload: null });
    },
    (r) => results.push(r),
    { minIntervalMs: 0 },
  );
  scheduler.request();
  const final = await scheduler.finish();
  assert.ok(results[0] instanceof Error);
  assert.ok(!(final instanceof Error));
  assert.equal(scheduler.completed, 1);
});

/** Whether each of three checkpoints and the final one was told to upload a `bytes` manifest. */
async function uploadsAsked(bytes: number, uploadBytesPerSecond: number): Promise<boolean[]> {
  const asked: boolean[] = [];
  let ended = Promise.withResolvers<void>();
  const scheduler = new CheckpointScheduler(
    ({ upload }) => {
      asked.push(upload);
      return Promise.resolve({
        rows: 1,
        bytes,
        exportMs: 0,
        at: new Date(),
        upload: upload ? { ok: true, error: null, attempts: 1 } : null,
      });
    },
    () => ended.resolve(),
    { minIntervalMs: 0, uploadBytesPerSecond },
  );
  for (let i = 0; i < 3; i++) {
    ended = Promise.withResolvers<void>();
    scheduler.request();
    await ended.promise;
  }
  await scheduler.finish();
  return asked;
}

Deno.test("a large manifest is uploaded only as the upload budget allows, and always at the end", async () => {
  // A million bytes at one byte a second: nothing after the first upload until the final one.
  assert.deepEqual(await uploadsAsked(1_000_000, 1), [true, false, false, true]);
});

Deno.test("a small manifest is uploaded with every checkpoint", async () => {
  assert.deepEqual(await uploadsAsked(10, 1e12), [true, true, true, true]);
});
