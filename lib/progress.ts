/**
 * What the operator sees while a run goes on: one bar redrawn in place on a terminal, a plain
 * line every `--log-interval` seconds when output goes to a pipe or a log file, or nothing but
 * warnings with `--quiet`. The text itself comes from pure functions of a {@link ProgressState},
 * a clock reading and a width, so it is tested without a terminal or real time.
 *
 * @module
 */

import prettyBytes from "pretty-bytes";
import prettyMs from "pretty-ms";
import type { RunCounters } from "./ingest.ts";

/** Completed results counted at one moment, for the sliding-window rate. */
export interface RateSample {
  /** Milliseconds since the epoch. */
  at: number;
  done: number;
}

/** Everything the progress text is made of. */
export interface ProgressState {
  counters: RunCounters;
  /** When the run started, in milliseconds since the epoch. */
  startedAt: number;
  /** When the last checkpoint's export finished, or `null` before the first. */
  lastCheckpointAt: number | null;
  /** Oldest first; see {@link addRateSample}. */
  samples: RateSample[];
}

/** The rate is measured over about this many milliseconds, so it follows the source's pace. */
export const RATE_WINDOW_MS = 30_000;

/** A terminal gets at most this many redraws a second, cheap over a slow SSH link. */
const REDRAW_MS = 100;

const SEPARATOR = "  ";
const BAR_MIN = 10;
const BAR_MAX = 30;

/** URLs whose final result is recorded. */
export function doneCount(counters: RunCounters): number {
  return counters.success + counters.failed;
}

/**
 * Appends a sample and drops those no longer needed: the newest one older than the window is
 * kept as the baseline, so the rate always spans at least the window once the run is that old.
 */
export function addRateSample(samples: RateSample[], sample: RateSample): void {
  samples.push(sample);
  const start = sample.at - RATE_WINDOW_MS;
  while (samples.length > 1 && samples[1].at <= start) samples.shift();
}

/** Results per second since the oldest sample, or `null` until some time has passed. */
export function windowRate(
  samples: readonly RateSample[],
  now: number,
  done: number,
): number | null {
  const base = samples[0];
  if (base === undefined || now <= base.at) return null;
  return ((done - base.done) * 1000) / (now - base.at);
}

/** A duration for people: `0s`, `<1s`, `42s`, `1m 12s`, `3h 5m`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  return ms < 1000 ? "<1s" : prettyMs(ms, { secondsDecimalDigits: 0, unitCount: 2 });
}

/** A rate for people: one decimal below 10 a second, whole numbers above. */
export function formatRate(perSecond: number): string {
  return perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond).toString();
}

interface Figures {
  done: number;
  total: number;
  percent: number;
  rate: string;
  eta: string;
  bytes: string;
  checkpoint: string | null;
  elapsed: string;
}

function figures(state: ProgressState, now: number): Figures {
  const { counters } = state;
  const done = doneCount(counters);
  const rate = windowRate(state.samples, now, done);
  const remaining = Math.max(0, counters.total - done);
  let eta = "--";
  if (remaining === 0) eta = "0s";
  else if (rate !== null && rate > 0) eta = formatDuration((remaining / rate) * 1000);
  return {
    done,
    total: counters.total,
    percent: counters.total === 0 ? 100 : (done / counters.total) * 100,
    rate: rate === null ? "--" : formatRate(rate),
    eta,
    bytes: prettyBytes(counters.bytes),
    checkpoint: state.lastCheckpointAt === null
      ? null
      : formatDuration(Math.max(0, now - state.lastCheckpointAt)),
    elapsed: formatDuration(Math.max(0, now - state.startedAt)),
  };
}

/**
 * The plain progress line written every `--log-interval` seconds when output is not a terminal:
 * every figure, spelled out, no colour, no width limit.
 */
export function renderLine(state: ProgressState, now: number): string {
  const f = figures(state, now);
  const c = state.counters;
  return `progress: ${f.done}/${f.total} (${f.percent.toFixed(1)}%), ${c.success} ok, ` +
    `${c.failed} failed, ${c.retryWaiting} retry waiting, ${c.inFlight} in flight, ` +
    `${f.rate} URL/s, ETA ${f.eta}, ${f.bytes} archived, ` +
    `last checkpoint ${f.checkpoint === null ? "none yet" : `${f.checkpoint} ago`}, ` +
    `elapsed ${f.elapsed}`;
}

type Colour = "green" | "red" | "yellow" | "dim";

// Four SGR codes do not justify a colour library; the ones on npm also read FORCE_COLOR, TERM or
// CI at import, which the compiled binary has no permission to read.
const SGR: Record<Colour, [number, number]> = {
  green: [32, 39],
  red: [31, 39],
  yellow: [33, 39],
  dim: [2, 22],
};

function paint(text: string, colour: Colour | null, enabled: boolean): string {
  if (!enabled || colour === null) return text;
  const [on, off] = SGR[colour];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

interface Segment {
  text: string;
  colour: Colour | null;
}

/**
 * The one-line bar for a terminal `width` columns wide. Figures are dropped, least useful
 * first, until the line fits in `width - 1` columns (the last column would make some terminals
 * wrap); the bar itself takes what room is left, and disappears on very narrow terminals.
 */
export function renderBar(
  state: ProgressState,
  now: number,
  width: number,
  colour = false,
): string {
  const f = figures(state, now);
  const c = state.counters;
  // In order of importance; shown in this order too.
  const segments: Segment[] = [
    { text: `${f.done}/${f.total} ${Math.floor(f.percent)}%`, colour: null },
    { text: `ok ${c.success}`, colour: "green" },
    { text: `failed ${c.failed}`, colour: c.failed > 0 ? "red" : null },
    { text: `${f.rate} URL/s`, colour: null },
    { text: `ETA ${f.eta}`, colour: null },
    { text: `in flight ${c.inFlight}`, colour: null },
    { text: `retrying ${c.retryWaiting}`, colour: c.retryWaiting > 0 ? "yellow" : null },
    { text: f.bytes, colour: null },
    {
      text: f.checkpoint === null ? "no checkpoint yet" : `checkpoint ${f.checkpoint} ago`,
      colour: "dim",
    },
  ];
  const room = width - 1;
  const withBar = fitting(segments, room - BAR_MIN - 1);
  const used = joinedLength(withBar);
  if (room - used - 1 < BAR_MIN) {
    const text = fitting(segments, room).map((s) => s.text).join(SEPARATOR);
    return text.slice(0, Math.max(0, room));
  }
  const barWidth = Math.min(BAR_MAX, room - used - 1);
  const filled = f.total === 0 ? barWidth : Math.floor((f.done / f.total) * barWidth);
  const bar = "█".repeat(filled) + "░".repeat(barWidth - filled);
  const text = withBar.map((s) => paint(s.text, s.colour, colour)).join(SEPARATOR);
  return `${paint(bar, "green", colour)} ${text}`;
}

/** The leading segments that fit in `room` columns; always at least the first. */
function fitting(segments: Segment[], room: number): Segment[] {
  let count = 1;
  while (count < segments.length && joinedLength(segments.slice(0, count + 1)) <= room) count++;
  return segments.slice(0, count);
}

function joinedLength(segments: Segment[]): number {
  return segments.reduce((n, s) => n + s.text.length, 0) +
    SEPARATOR.length * Math.max(0, segments.length - 1);
}

/** `bar` redraws in place, `lines` prints plain lines now and then, `quiet` only warnings. */
export type ProgressMode = "bar" | "lines" | "quiet";

/** A clock and a timer, replaceable in tests. */
export interface ProgressClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `tick` every `ms` milliseconds until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

/** The real clock. */
export const systemClock: ProgressClock = {
  now: () => Date.now(),
  every: (ms, tick) => {
    const timer = setInterval(tick, ms);
    return () => clearInterval(timer);
  },
};

/** Where and how progress is shown. */
export interface ProgressOptions {
  /** Writes text as is (no newline added). */
  write: (text: string) => void;
  mode: ProgressMode;
  /** ANSI colours in the bar (never in `lines` mode). */
  colour: boolean;
  /** Milliseconds between lines in `lines` mode. */
  logIntervalMs: number;
  /** The terminal's width in columns, read at each redraw so a resize is followed. */
  columns?: () => number;
  clock?: ProgressClock;
}

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const CLEAR_TO_END = "\x1b[K";

/** The terminal's width, or 80 when it cannot be read or is 0 (a pseudo-terminal never sized). */
export function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/** A running progress display; call {@link ProgressDisplay.stop} before printing the summary. */
export class ProgressDisplay {
  readonly #options: ProgressOptions;
  readonly #clock: ProgressClock;
  readonly #state: ProgressState;
  readonly #cancel: () => void;
  #bar = "";
  #stopped = false;
  // The cursor is hidden while the bar is drawn; whatever ends the process must show it again.
  readonly #restore = () => this.#options.write(SHOW_CURSOR);

  /** Starts showing `counters`. */
  constructor(counters: RunCounters, options: ProgressOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const now = this.#clock.now();
    this.#state = { counters, startedAt: now, lastCheckpointAt: null, samples: [] };
    addRateSample(this.#state.samples, { at: now, done: doneCount(counters) });
    if (options.mode === "bar") {
      options.write(HIDE_CURSOR);
      globalThis.addEventListener("unload", this.#restore);
      this.#cancel = this.#clock.every(REDRAW_MS, () => this.#redraw());
    } else if (options.mode === "lines") {
      this.#cancel = this.#clock.every(options.logIntervalMs, () => this.#printLine());
    } else {
      this.#cancel = () => {};
    }
  }

  #sample(): number {
    const now = this.#clock.now();
    addRateSample(this.#state.samples, { at: now, done: doneCount(this.#state.counters) });
    return now;
  }

  #redraw(): void {
    const now = this.#sample();
    const columns = this.#options.columns?.() ?? terminalColumns();
    const bar = renderBar(this.#state, now, columns, this.#options.colour);
    if (bar === this.#bar) return;
    this.#bar = bar;
    this.#options.write(`\r${bar}${CLEAR_TO_END}`);
  }

  #printLine(): void {
    this.#options.write(`${renderLine(this.#state, this.#sample())}\n`);
  }

  /** Records that a checkpoint's export finished at `at` (milliseconds since the epoch). */
  checkpoint(at: number): void {
    this.#state.lastCheckpointAt = at;
  }

  /** Prints `message` on its own line; on a terminal, above the bar, which is drawn again. */
  log(message: string): void {
    if (this.#options.mode === "bar" && !this.#stopped) {
      this.#options.write(`\r${CLEAR_TO_END}${message}\n${this.#bar}`);
    } else {
      this.#options.write(`${message}\n`);
    }
  }

  /** Stops redrawing; on a terminal, leaves the final bar on its own line and shows the cursor. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancel();
    if (this.#options.mode === "bar") {
      this.#redraw();
      this.#options.write(`\n${SHOW_CURSOR}`);
      globalThis.removeEventListener("unload", this.#restore);
    }
  }
}
