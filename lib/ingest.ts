/**
 * The ingest loop: keeps exactly `concurrency` worker requests in flight while work remains,
 * retries what can heal, commits each final result before counting it, and asks for a Parquet
 * checkpoint after every 100th success.
 *
 * @module
 */

import { retryDelayMs, type RetryPolicy } from "./retry_policy.ts";
import { requestDownload, type WorkerEndpoint, type WorkerOutcome } from "./worker_client.ts";
import type { DownloadRow, DownloadStore } from "./store.ts";

/** Successes between two checkpoints, as in the Python original. */
export const CHECKPOINT_EVERY = 100;

/** What the loop needs to know. */
export interface IngestConfig {
  datasetId: string;
  keyPrefix: string;
  endpoint: WorkerEndpoint;
  concurrency: number;
  policy: RetryPolicy;
  /** Paces request starts (`--rate`); without it only `concurrency` limits them. */
  pacer?: Pacer;
}

/** Decides when the next request may start. */
export interface Pacer {
  /** Takes the right to start one request now and returns 0, or returns the milliseconds to wait. */
  take(): number;
}

/** Live counts of one run, read by the progress display. */
export interface RunCounters {
  /** URLs this run will try. */
  total: number;
  success: number;
  failed: number;
  /** Requests under way now. */
  inFlight: number;
  /** URLs waiting out a retry delay. */
  retryWaiting: number;
  /** Retries sent so far. */
  retries: number;
  /** Sum of `size_bytes` of this run's successes. */
  bytes: number;
  /** This run's final failures, counted by error message. */
  errors: Map<string, number>;
}

/** How the run may be stopped from outside. */
export interface StopSignals {
  /** Stop taking new URLs; in-flight requests may finish. */
  graceful: AbortSignal;
  /** Abort in-flight requests now; they are recorded as `interrupted`. */
  immediate: AbortSignal;
}

/** Why the loop ended. */
export type IngestEnd = "completed" | "stopped" | "token-rejected";

/** Hooks the caller may attach. */
export interface IngestHooks {
  /** Called after every committed success whose count is a multiple of {@link CHECKPOINT_EVERY}. */
  onCheckpointDue?: () => void;
  /** A line worth telling the operator (e.g. the token was revoked). */
  onWarning?: (message: string) => void;
}

interface Job {
  url: string;
  attempts: number;
  last: WorkerOutcome | null;
}

/** Turns a worker outcome into the row the `downloads` table records. */
export function outcomeToRow(url: string, datasetId: string, outcome: WorkerOutcome): DownloadRow {
  return {
    url,
    dataset_id: datasetId,
    status: outcome.ok ? "success" : "failed",
    http_status: outcome.httpStatus,
    etag: outcome.etag,
    error: outcome.ok ? null : outcome.error,
    started_at: outcome.startedAt,
    finished_at: outcome.finishedAt,
    multipart_part_size: outcome.multipartPartSize,
    multipart_number_parts: outcome.multipartNumberParts,
  };
}

/**
 * Sends every URL of `pending` to the worker and records the results in `store`. Resolves when
 * all are recorded, or when a stop or a rejected token ended the run early (every URL that was
 * started is still recorded).
 */
export function ingest(
  pending: Iterator<string>,
  store: DownloadStore,
  config: IngestConfig,
  counters: RunCounters,
  stop: StopSignals,
  hooks: IngestHooks = {},
): Promise<IngestEnd> {
  const { promise, resolve, reject } = Promise.withResolvers<IngestEnd>();
  const ready: Job[] = [];
  const waiting = new Map<ReturnType<typeof setTimeout>, Job>();
  let exhausted = false;
  let tokenRejected = false;
  let finished = false;
  let paceTimer: ReturnType<typeof setTimeout> | undefined;

  const halted = () => stop.graceful.aborted || tokenRejected;

  const record = (job: Job, outcome: WorkerOutcome) => {
    store.record([outcomeToRow(job.url, config.datasetId, outcome)]);
    if (outcome.ok) {
      counters.success++;
      counters.bytes += outcome.sizeBytes ?? 0;
      if (counters.success % CHECKPOINT_EVERY === 0) hooks.onCheckpointDue?.();
    } else {
      counters.failed++;
      const message = outcome.error ?? "unknown error";
      counters.errors.set(message, (counters.errors.get(message) ?? 0) + 1);
    }
  };

  const nextJob = (): Job | undefined => {
    const retry = ready.shift();
    if (retry !== undefined) return retry;
    if (exhausted) return undefined;
    const next = pending.next();
    if (next.done) {
      exhausted = true;
      return undefined;
    }
    return { url: next.value, attempts: 0, last: null };
  };

  const settleWaiting = () => {
    for (const [timer, job] of waiting) {
      clearTimeout(timer);
      record(job, job.last!);
    }
    waiting.clear();
    counters.retryWaiting = 0;
    for (const job of ready.splice(0)) record(job, job.last!);
  };

  // When the pacer says wait, a timer calls fill again; until it fires, nothing else may start.
  const paced = () => {
    const wait = config.pacer?.take() ?? 0;
    if (wait > 0) {
      paceTimer = setTimeout(() => {
        paceTimer = undefined;
        fill();
      }, wait);
    }
    return wait === 0;
  };

  const fill = () => {
    if (finished) return;
    try {
      if (halted()) settleWaiting();
      while (
        !halted() && counters.inFlight < config.concurrency && (ready.length > 0 || !exhausted) &&
        paceTimer === undefined && paced()
      ) {
        const job = nextJob();
        if (job === undefined) break;
        void attempt(job);
      }
      if (counters.inFlight === 0 && waiting.size === 0 && (halted() || exhausted)) {
        finished = true;
        clearTimeout(paceTimer);
        stop.graceful.removeEventListener("abort", fill);
        if (tokenRejected) resolve("token-rejected");
        else resolve(stop.graceful.aborted ? "stopped" : "completed");
      }
    } catch (error) {
      finished = true;
      reject(error);
    }
  };

  const attempt = async (job: Job) => {
    counters.inFlight++;
    if (job.attempts > 0) counters.retries++;
    const outcome = await requestDownload(config.endpoint, {
      download_url: job.url,
      user_agent: `Data for Canada - ${config.datasetId}`,
      key_prefix: config.keyPrefix,
    }, stop.immediate);
    counters.inFlight--;
    job.attempts++;
    job.last = outcome;
    if (outcome.httpStatus === 401 && !tokenRejected) {
      tokenRejected = true;
      hooks.onWarning?.("the worker rejected the token (401) mid-run: no new URLs will be sent");
    }
    if (!outcome.ok && outcome.retryable && job.attempts <= config.policy.maxRetries && !halted()) {
      const delay = retryDelayMs(config.policy, job.attempts, outcome.retryAfterMs);
      const timer = setTimeout(() => {
        waiting.delete(timer);
        counters.retryWaiting--;
        ready.push(job);
        fill();
      }, delay);
      waiting.set(timer, job);
      counters.retryWaiting++;
    } else {
      try {
        record(job, outcome);
      } catch (error) {
        finished = true;
        reject(error);
        return;
      }
    }
    fill();
  };

  stop.graceful.addEventListener("abort", fill);
  fill();
  return promise;
}
