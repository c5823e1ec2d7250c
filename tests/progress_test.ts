import assert from "node:assert/strict";
import {
  addRateSample,
  type ProgressClock,
  ProgressDisplay,
  type ProgressState,
  RATE_WINDOW_MS,
  renderBar,
  renderLine,
  windowRate,
} from "../lib/progress.ts";
import type { RunCounters } from "../lib/ingest.ts";

function counters(overrides: Partial<RunCounters> = {}): RunCounters {
  return {
    total: 1000,
    success: 405,
    failed: 7,
    inFlight: 12,
    retryWaiting: 3,
    retries: 9,
    bytes: 3_400_000_000,
    errors: new Map(),
    ...overrides,
  };
}

/** 412 done at t = 50 s, 166 of them done 30 s earlier: 8.2 URL/s. */
function midRun(overrides: Partial<RunCounters> = {}): ProgressState {
  return {
    counters: counters(overrides),
    startedAt: 0,
    lastCheckpointAt: 5_000,
    samples: [{ at: 20_000, done: 166 }],
  };
}

const ESC = "\x1b";

Deno.test("the plain line spells out every figure", () => {
  assert.equal(
    renderLine(midRun(), 50_000),
    "progress: 412/1000 (41.2%), 405 ok, 7 failed, 3 retry waiting, 12 in flight, 8.2 URL/s, " +
      "ETA 1m 11s, 3.4 GB archived, last checkpoint 45s ago, elapsed 50s",
  );
});

Deno.test("before any rate is known the ETA is unknown; when all is done it is zero", () => {
  const start: ProgressState = {
    counters: counters({ success: 0, failed: 0, bytes: 0 }),
    startedAt: 1_000,
    lastCheckpointAt: null,
    samples: [{ at: 1_000, done: 0 }],
  };
  assert.match(
    renderLine(start, 1_000),
    /, -- URL\/s, ETA --, 0 B archived, last checkpoint none yet/,
  );
  const done = { ...start, counters: counters({ success: 990, failed: 10, inFlight: 0 }) };
  assert.match(renderLine(done, 61_000), /^progress: 1000\/1000 \(100\.0%\).*ETA 0s.*elapsed 1m$/);
});

Deno.test("the rate window keeps one baseline sample older than the window", () => {
  const samples = [{ at: 0, done: 0 }];
  for (let at = 1_000; at <= 60_000; at += 1_000) addRateSample(samples, { at, done: at / 100 });
  assert.equal(samples[0].at, 60_000 - RATE_WINDOW_MS);
  assert.equal(samples.length, RATE_WINDOW_MS / 1_000 + 1);
  assert.equal(windowRate(samples, 60_000, 600), 10);
  assert.equal(windowRate([{ at: 5, done: 0 }], 5, 0), null);
  assert.equal(windowRate([], 5, 0), null);
});

/** The figures of a bar line, and the bar's width in cells. */
function split(line: string): { cells: number; filled: number; text: string } {
  const [, bar, text] = /^([█░]*) ?(.*)$/.exec(line)!;
  return { cells: bar.length, filled: bar.replaceAll("░", "").length, text };
}

const ALL_FIGURES = [
  "412/1000 41%",
  "ok 405",
  "failed 7",
  "8.2 URL/s",
  "ETA 1m 11s",
  "in flight 12",
  "retrying 3",
  "3.4 GB",
  "checkpoint 45s ago",
];

Deno.test("the bar shows everything on a wide terminal, in one line shorter than the width", () => {
  const line = renderBar(midRun(), 50_000, 200);
  assert.ok(line.length <= 199, line);
  assert.deepEqual(split(line), { cells: 30, filled: 12, text: ALL_FIGURES.join("  ") });
  assert.ok(!line.includes(ESC));
});

Deno.test("on narrower terminals the bar shrinks, then the least useful figures go", () => {
  for (let width = 2; width <= 200; width++) {
    const line = renderBar(midRun(), 50_000, width);
    assert.ok(line.length <= width - 1, `width ${width}: ${line.length} columns`);
  }
  assert.deepEqual(split(renderBar(midRun(), 50_000, 120)), {
    cells: 11,
    filled: 4,
    text: ALL_FIGURES.join("  "),
  });
  assert.deepEqual(split(renderBar(midRun(), 50_000, 80)), {
    cells: 11,
    filled: 4,
    text: ALL_FIGURES.slice(0, 6).join("  "),
  });
  assert.equal(renderBar(midRun(), 50_000, 30), "██████░░░░░░░░░░ 412/1000 41%");
  assert.equal(renderBar(midRun(), 50_000, 22), "412/1000 41%  ok 405");
  assert.equal(renderBar(midRun(), 50_000, 10), "412/1000 ");
});

Deno.test("colours only when asked, and never counted as width", () => {
  const plain = renderBar(midRun(), 50_000, 100);
  const coloured = renderBar(midRun(), 50_000, 100, true);
  assert.ok(coloured.includes(`${ESC}[32mok 405${ESC}[39m`), coloured);
  assert.ok(coloured.includes(`${ESC}[31mfailed 7${ESC}[39m`), coloured);
  assert.equal(coloured.replaceAll(new RegExp(`${ESC}\\[\\d+m`, "g"), ""), plain);
  const clean = renderBar(midRun({ failed: 0, retryWaiting: 0 }), 50_000, 200, true);
  assert.match(clean, / failed 0 /, "no red when nothing failed");
  assert.match(clean, / retrying 0 /);
});

/** A clock whose time and timer the test moves by hand. */
function fakeClock(start = 1_000_000) {
  const timers: { ms: number; tick: () => void; cancelled: boolean }[] = [];
  const clock: ProgressClock & { time: number } = {
    time: start,
    now: () => clock.time,
    every: (ms, tick) => {
      const timer = { ms, tick, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
  };
  return { clock, timers };
}

Deno.test("not a terminal: one plain line per --log-interval tick, warnings on their own line", () => {
  const { clock, timers } = fakeClock();
  const written: string[] = [];
  const c = counters({ success: 0, failed: 0, inFlight: 2, retryWaiting: 0, bytes: 0 });
  const display = new ProgressDisplay(c, {
    write: (text) => written.push(text),
    mode: "lines",
    colour: true,
    logIntervalMs: 10_000,
    clock,
  });
  assert.equal(timers.length, 1);
  assert.equal(timers[0].ms, 10_000);
  assert.deepEqual(written, []);
  clock.time += 10_000;
  c.success = 50;
  timers[0].tick();
  display.log("checkpoint upload to x failed: HTTP 502");
  display.checkpoint(clock.time);
  clock.time += 10_000;
  c.success = 150;
  c.failed = 1;
  timers[0].tick();
  display.stop();
  assert.ok(timers[0].cancelled);
  assert.deepEqual(written, [
    "progress: 50/1000 (5.0%), 50 ok, 0 failed, 0 retry waiting, 2 in flight, 5.0 URL/s, " +
    "ETA 3m 10s, 0 B archived, last checkpoint none yet, elapsed 10s\n",
    "checkpoint upload to x failed: HTTP 502\n",
    "progress: 151/1000 (15.1%), 150 ok, 1 failed, 0 retry waiting, 2 in flight, 7.5 URL/s, " +
    "ETA 1m 52s, 0 B archived, last checkpoint 10s ago, elapsed 20s\n",
  ]);
});

Deno.test("a terminal: redrawn in place at most 10 times a second, warnings above the bar", () => {
  const { clock, timers } = fakeClock();
  const written: string[] = [];
  const c = counters({ success: 0, failed: 0, inFlight: 1, retryWaiting: 0, bytes: 0 });
  const display = new ProgressDisplay(c, {
    write: (text) => written.push(text),
    mode: "bar",
    colour: false,
    logIntervalMs: 10_000,
    columns: () => 60,
    clock,
  });
  assert.equal(timers.length, 1);
  assert.ok(timers[0].ms >= 100, "at most 10 redraws a second");
  assert.deepEqual(written, ["\x1b[?25l"], "the cursor is hidden while the bar is up");
  clock.time += 1_000;
  c.success = 10;
  timers[0].tick();
  const bar = renderBar(
    {
      counters: c,
      startedAt: 1_000_000,
      lastCheckpointAt: null,
      samples: [{ at: 1_000_000, done: 0 }],
    },
    clock.time,
    60,
  );
  assert.equal(written.at(-1), `\r${bar}\x1b[K`);
  timers[0].tick();
  assert.equal(written.length, 2, "an unchanged bar is not written again");
  display.log("SIGINT: finishing 1 request(s) in flight");
  assert.equal(written.at(-1), `\r\x1b[KSIGINT: finishing 1 request(s) in flight\n${bar}`);
  display.stop();
  assert.ok(timers[0].cancelled);
  assert.equal(written.at(-1), "\n\x1b[?25h", "the bar keeps its line and the cursor comes back");
  display.log("after");
  assert.equal(written.at(-1), "after\n");
});

Deno.test("--quiet: no progress at all, warnings still printed", () => {
  const { clock, timers } = fakeClock();
  const written: string[] = [];
  const display = new ProgressDisplay(counters(), {
    write: (text) => written.push(text),
    mode: "quiet",
    colour: false,
    logIntervalMs: 10_000,
    clock,
  });
  display.log("checkpoint failed: disk full");
  display.stop();
  assert.equal(timers.length, 0);
  assert.deepEqual(written, ["checkpoint failed: disk full\n"]);
});
