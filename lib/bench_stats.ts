/**
 * Figures for `deno task bench` that only the CLI can measure. When the environment variable
 * `D4C_INGESTOR_BENCH_STATS` names a file (and the CLI may read that variable), the run writes
 * one {@link BenchStats} JSON object there as it ends; otherwise nothing is measured.
 *
 * @module
 */

/** The variable naming the stats file. */
export const BENCH_STATS_ENV = "D4C_INGESTOR_BENCH_STATS";

/** Worker answers received over some seconds of the dispatch loop. */
export interface RateSample {
  seconds: number;
  answers: number;
}

/** What one run wrote to the stats file. */
export interface BenchStats {
  /** Checkpoints completed, the final one included. */
  checkpoints: number;
  /** Longest time a checkpoint took to build and write the manifest. */
  export_ms_max: number;
  /** The final checkpoint's export time. */
  export_ms_final: number;
  /** Rows of the final manifest. */
  parquet_rows: number;
  /** Peak resident set (VmHWM) just before exit, where /proc tells it. */
  peak_rss_mb: number | null;
  /** Worker answers received while a checkpoint was running, and while none was. */
  dispatch: { during_checkpoint: RateSample; between_checkpoints: RateSample };
}

/** Collects {@link BenchStats} during a run. */
export class BenchRecorder {
  readonly #path: string;
  readonly #done: () => number;
  readonly #during: RateSample = { seconds: 0, answers: 0 };
  readonly #between: RateSample = { seconds: 0, answers: 0 };
  #inCheckpoint = false;
  #dispatching = false;
  #markTime = 0;
  #markDone = 0;
  #exportMax = 0;
  #exportFinal = 0;
  #checkpoints = 0;

  /**
   * @param path where to write the stats.
   * @param done the number of worker answers received so far.
   */
  constructor(path: string, done: () => number) {
    this.#path = path;
    this.#done = done;
  }

  /** Closes the current interval into the bucket it belongs to and opens the next. */
  #mark(): void {
    const now = performance.now();
    const done = this.#done();
    if (this.#dispatching) {
      const bucket = this.#inCheckpoint ? this.#during : this.#between;
      bucket.seconds += (now - this.#markTime) / 1000;
      bucket.answers += done - this.#markDone;
    }
    this.#markTime = now;
    this.#markDone = done;
  }

  /** The dispatch loop starts or stops. */
  dispatching(on: boolean): void {
    this.#mark();
    this.#dispatching = on;
  }

  /** A checkpoint starts. */
  checkpointStarted(): void {
    this.#mark();
    this.#inCheckpoint = true;
  }

  /** A checkpoint ended; `exportMs` is its export time, if it got that far. */
  checkpointEnded(exportMs: number | null): void {
    this.#mark();
    this.#inCheckpoint = false;
    if (exportMs !== null) {
      this.#checkpoints++;
      this.#exportMax = Math.max(this.#exportMax, exportMs);
      this.#exportFinal = exportMs;
    }
  }

  /** Writes the stats file. */
  write(parquetRows: number): void {
    const stats: BenchStats = {
      checkpoints: this.#checkpoints,
      export_ms_max: this.#exportMax,
      export_ms_final: this.#exportFinal,
      parquet_rows: parquetRows,
      peak_rss_mb: peakRssMb(),
      dispatch: { during_checkpoint: this.#during, between_checkpoints: this.#between },
    };
    Deno.writeTextFileSync(this.#path, JSON.stringify(stats) + "\n");
  }
}

/** A recorder when the stats variable is set and readable, else `null`. */
export function benchRecorderFromEnv(done: () => number): BenchRecorder | null {
  // Asking first: with narrowed --allow-env, reading another variable would prompt or throw.
  if (Deno.permissions.querySync({ name: "env", variable: BENCH_STATS_ENV }).state !== "granted") {
    return null;
  }
  const path = Deno.env.get(BENCH_STATS_ENV);
  return path ? new BenchRecorder(path, done) : null;
}

function peakRssMb(): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}
