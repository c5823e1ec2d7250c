/**
 * Parquet checkpoints: export the whole `downloads` table to `<out>.parquet` and upload it through
 * the worker. Checkpoints never overlap; one requested while another runs is folded into a single
 * follow-up, which then reflects every row committed by the time it starts.
 *
 * @module
 */

import { retryDelayMs, type RetryPolicy } from "./retry_policy.ts";
import { uploadObject, type WorkerEndpoint, type WorkerOutcome } from "./worker_client.ts";
import {
  appendRow,
  emptyColumns,
  encodeManifest,
  PARQUET_CONTENT_TYPE,
  writeFileAtomically,
} from "./parquet.ts";
import type { DownloadStore } from "./store.ts";

/** Where a checkpoint goes. */
export interface CheckpointTarget {
  /** Local file, `<out>.parquet`. */
  path: string;
  /** Upload destination; `null` to keep the manifest local. `signal` abandons the upload. */
  upload:
    | { endpoint: WorkerEndpoint; key: string; policy: RetryPolicy; signal?: AbortSignal }
    | null;
}

/** What one checkpoint did. */
export interface CheckpointResult {
  rows: number;
  bytes: number;
  exportMs: number;
  /** When the export finished. */
  at: Date;
  /** `null` when no upload was asked for, else whether it landed and why not. */
  upload: { ok: boolean; error: string | null; attempts: number } | null;
}

/** Writes the manifest of every row in `store` to `path`, atomically. */
export async function exportManifest(
  store: DownloadStore,
  path: string,
): Promise<{ bytes: Uint8Array<ArrayBuffer>; rows: number }> {
  const columns = emptyColumns();
  for (const row of store.rows()) appendRow(columns, row);
  const bytes = encodeManifest(columns);
  await writeFileAtomically(path, bytes);
  return { bytes, rows: columns.url.length };
}

/**
 * Uploads `bytes` with PUT, retrying transient failures under `policy`; `signal` aborts the
 * request under way (its outcome is `interrupted`) and any retry still to come.
 */
export async function uploadWithRetries(
  endpoint: WorkerEndpoint,
  key: string,
  bytes: Uint8Array<ArrayBuffer>,
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<{ outcome: WorkerOutcome; attempts: number }> {
  for (let attempt = 1;; attempt++) {
    const outcome = await uploadObject(endpoint, key, bytes, PARQUET_CONTENT_TYPE, signal);
    if (outcome.ok || !outcome.retryable || attempt > policy.maxRetries) {
      return { outcome, attempts: attempt };
    }
    await sleep(retryDelayMs(policy, attempt, outcome.retryAfterMs), signal);
  }
}

/** Waits `ms`, or until `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Runs one checkpoint: export, then upload if asked. Never throws for an upload failure. */
export async function runCheckpoint(
  store: DownloadStore,
  target: CheckpointTarget,
): Promise<CheckpointResult> {
  const started = performance.now();
  const { bytes, rows } = await exportManifest(store, target.path);
  const exportMs = performance.now() - started;
  const at = new Date();
  if (target.upload === null) return { rows, bytes: bytes.length, exportMs, at, upload: null };
  const { endpoint, key, policy, signal } = target.upload;
  const { outcome, attempts } = await uploadWithRetries(endpoint, key, bytes, policy, signal);
  return {
    rows,
    bytes: bytes.length,
    exportMs,
    at,
    upload: { ok: outcome.ok, error: outcome.ok ? null : outcome.error, attempts },
  };
}

/**
 * Serialises checkpoints: at most one runs, and requests made meanwhile fold into one more.
 */
export class CheckpointScheduler {
  readonly #run: () => Promise<CheckpointResult>;
  readonly #onResult: (result: CheckpointResult | Error) => void;
  #running: Promise<void> | null = null;
  #pending = false;
  /** Checkpoints completed, the final one included. */
  completed = 0;
  /** The last checkpoint's result. */
  last: CheckpointResult | null = null;

  /**
   * @param run performs one checkpoint.
   * @param onResult told of each checkpoint's result, or of the error that stopped it.
   */
  constructor(
    run: () => Promise<CheckpointResult>,
    onResult: (result: CheckpointResult | Error) => void,
  ) {
    this.#run = run;
    this.#onResult = onResult;
  }

  /** Asks for a checkpoint soon; folded into the next one if one is already running. */
  request(): void {
    if (this.#running !== null) {
      this.#pending = true;
      return;
    }
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    do {
      this.#pending = false;
      await this.#once();
    } while (this.#pending);
    this.#running = null;
  }

  async #once(): Promise<CheckpointResult | Error> {
    let result: CheckpointResult | Error;
    try {
      result = await this.#run();
      this.last = result;
      this.completed++;
    } catch (error) {
      result = error instanceof Error ? error : new Error(String(error));
    }
    this.#onResult(result);
    return result;
  }

  /** Waits for any running checkpoint, then runs the final one, which sees every committed row. */
  async finish(): Promise<CheckpointResult | Error> {
    this.#pending = false;
    while (this.#running !== null) await this.#running;
    return await this.#once();
  }
}
