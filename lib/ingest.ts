/**
 * The ingest loop: keeps exactly `concurrency` worker requests in flight while work remains,
 * retries what can heal, commits each final result before counting it, and asks for a Parquet
 * checkpoint after every 100th success. Results that finish within {@link COMMIT_WINDOW_MS} of
 * each other are handed to `commit` as one batch, which may commit them on another thread, so
 * dispatch does not wait for SQLite (unless it falls {@link MAX_UNCOMMITTED_RESULTS} behind) and a
 * fast worker is not throttled by one transaction per URL.
 *
 * @module
 */

import { retryDelayMs, type RetryPolicy } from "./retry_policy.ts";
import { requestDownload, type WorkerEndpoint, type WorkerOutcome } from "./worker_client.ts";
import type { DownloadRow } from "./store.ts";

/**
 * Commits rows durably (to the `downloads` table); resolves once they are committed. Calls may
 * overlap; each URL appears in at most one call per run.
 */
export type CommitRows = (rows: DownloadRow[]) => Promise<void>;

/**
 * How long a result waits for others to share its commit. At thousands of results a second, a
 * batch per 5 ms rather than per event-loop turn costs a twentieth less CPU per URL (fewer
 * messages to the committing thread and fewer transactions); the last results of a run are
 * committed at once.
 */
export const COMMIT_WINDOW_MS = 5;

/**
 * The most results that may wait to be committed. Should commits fall this far behind (a slow
 * disk, or a machine too busy to give the committing thread its share of the CPU), no request
 * starts until they catch up, which keeps memory bounded; a run on a healthy machine stays far
 * below it.
 */
export const MAX_UNCOMMITTED_RESULTS = 10_000;

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
  /** See {@link MAX_UNCOMMITTED_RESULTS} (the default; smaller only in tests). */
  maxUncommitted?: number;
}

/** Decides when the next request may start. */
export interface Pacer {
  /** Takes the right to start one request now and returns 0, or returns the ms to wait. */
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

/** The counters of a run that will try `total` URLs, before it starts. */
export function zeroCounters(total: number): RunCounters {
  return {
    total,
    success: 0,
    failed: 0,
    inFlight: 0,
    retryWaiting: 0,
    retries: 0,
    bytes: 0,
    errors: new Map(),
  };
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
  /** Called after a commit that took the successes past a multiple of {@link CHECKPOINT_EVERY}. */
  onCheckpointDue?: () => void;
  /** Called when any request to the worker ends, whatever its outcome (`deno task bench`). */
  onAnswer?: () => void;
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
 * Sends every URL of `pending` to the worker and records the results with `commit`. Resolves when
 * all are recorded, or when a stop or a rejected token ended the run early (every URL that was
 * started is still recorded).
 */
export function ingest(
  pending: Iterator<string>,
  commit: CommitRows,
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

  const toCommit: { job: Job; outcome: WorkerOutcome }[] = [];
  let commitTimer: ReturnType<typeof setTimeout> | null = null;
  /** Results recorded and not yet committed: waiting in `toCommit` or in a commit under way. */
  let uncommitted = 0;
  const maxUncommitted = config.maxUncommitted ?? MAX_UNCOMMITTED_RESULTS;

  const fail = (error: unknown) => {
    if (finished) return;
    finished = true;
    reject(error);
  };

  /** Counts a batch once it is committed. */
  const count = (batch: { outcome: WorkerOutcome }[]) => {
    const before = counters.success;
    for (const { outcome } of batch) {
      if (outcome.ok) {
        counters.success++;
        counters.bytes += outcome.sizeBytes ?? 0;
      } else {
        counters.failed++;
        const message = outcome.error ?? "unknown error";
        counters.errors.set(message, (counters.errors.get(message) ?? 0) + 1);
      }
    }
    if (Math.floor(counters.success / CHECKPOINT_EVERY) > Math.floor(before / CHECKPOINT_EVERY)) {
      hooks.onCheckpointDue?.();
    }
  };

  /** Sends every finished result to be committed; they are counted when that is done. */
  const flush = () => {
    if (commitTimer !== null) clearTimeout(commitTimer);
    commitTimer = null;
    if (toCommit.length === 0) return;
    const batch = toCommit.splice(0);
    commit(batch.map(({ job, outcome }) => outcomeToRow(job.url, config.datasetId, outcome)))
      .then(() => {
        uncommitted -= batch.length;
        count(batch);
        fill();
      }, fail);
  };

  const record = (job: Job, outcome: WorkerOutcome) => {
    toCommit.push({ job, outcome });
    uncommitted++;
    commitTimer ??= setTimeout(flush, COMMIT_WINDOW_MS);
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
        uncommitted < maxUncommitted && paceTimer === undefined && paced()
      ) {
        const job = nextJob();
        if (job === undefined) break;
        void attempt(job);
      }
      if (counters.inFlight === 0 && waiting.size === 0 && (halted() || exhausted)) {
        flush();
        if (uncommitted > 0) return;
        finished = true;
        clearTimeout(paceTimer);
        stop.graceful.removeEventListener("abort", fill);
        if (tokenRejected) resolve("token-rejected");
        else resolve(stop.graceful.aborted ? "stopped" : "completed");
      }
    } catch (error) {
      fail(error);
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
    hooks.onAnswer?.();
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
      record(job, outcome);
    }
    fill();
  };

  stop.graceful.addEventListener("abort", fill);
  fill();
  return promise;
}
