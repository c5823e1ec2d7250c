/**
 * What the operator sees while a run goes on: a bar redrawn in place on a terminal, or a plain
 * line every few seconds when output goes to a pipe or a log file.
 *
 * @module
 */

import type { RunCounters } from "./ingest.ts";

/** Where and how often progress is shown. */
export interface ProgressOptions {
  /** Writes text as is (no newline added). */
  write: (text: string) => void;
  /** Redraw one line in place (a terminal) rather than print lines. */
  tty: boolean;
  /** Milliseconds between plain lines when not a terminal. */
  logIntervalMs: number;
  /** Clock, replaceable in tests. */
  now?: () => number;
}

const TTY_REDRAW_MS = 100;

/** Formats a duration in seconds as `1h02m03s`, `2m03s` or `3.1s`. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds % 60).toString().padStart(2, "0");
  const m = Math.floor((seconds / 60) % 60);
  const h = Math.floor(seconds / 3600);
  return h > 0 ? `${h}h${m.toString().padStart(2, "0")}m${s}s` : `${m}m${s}s`;
}

/** One line describing `counters` after `elapsedSeconds`. */
export function progressLine(counters: RunCounters, elapsedSeconds: number): string {
  const done = counters.success + counters.failed;
  const percent = counters.total === 0 ? 100 : (done / counters.total) * 100;
  return `${done}/${counters.total} (${percent.toFixed(1)}%) ` +
    `ok ${counters.success}, failed ${counters.failed}, ` +
    `in flight ${counters.inFlight}, retry waiting ${counters.retryWaiting}, ` +
    `elapsed ${formatDuration(elapsedSeconds)}`;
}

/** A running progress display; call {@link ProgressDisplay.stop} before printing the summary. */
export class ProgressDisplay {
  readonly #options: ProgressOptions;
  readonly #counters: RunCounters;
  readonly #now: () => number;
  readonly #started: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #drawn = false;

  /** Starts showing `counters`. */
  constructor(counters: RunCounters, options: ProgressOptions) {
    this.#options = options;
    this.#counters = counters;
    this.#now = options.now ?? (() => performance.now());
    this.#started = this.#now();
    const interval = options.tty ? TTY_REDRAW_MS : options.logIntervalMs;
    this.#timer = setInterval(() => this.#tick(), interval);
  }

  #line(): string {
    return progressLine(this.#counters, (this.#now() - this.#started) / 1000);
  }

  #tick(): void {
    if (this.#options.tty) {
      this.#options.write(`\r\x1b[2K${this.#line()}`);
      this.#drawn = true;
    } else {
      this.#options.write(`${this.#line()}\n`);
    }
  }

  /** Prints `message` on its own line, above the bar on a terminal. */
  log(message: string): void {
    if (this.#drawn) this.#options.write("\r\x1b[2K");
    this.#options.write(`${message}\n`);
    if (this.#drawn) this.#options.write(this.#line());
  }

  /** Stops redrawing and leaves the final state on its own line. */
  stop(): void {
    clearInterval(this.#timer);
    if (this.#options.tty) this.#options.write(`\r\x1b[2K${this.#line()}\n`);
  }
}
