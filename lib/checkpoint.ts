/**
 * Parquet checkpoints: write the manifest to `<out>.parquet` and upload it through the worker.
 *
 * During a run the manifest lives in a Web Worker ({@link CheckpointWorker}, checkpoint_worker.ts)
 * that commits every result and rebuilds only what changed, so committing and checkpointing cost
 * the dispatch loop nothing but messages. {@link CheckpointScheduler} never runs two checkpoints at
 * once, folds requests made meanwhile into one follow-up, and spaces checkpoints so that they
 * take at most about half the wall time.
 *
 * @module
 */

import type { RetryPolicy } from "./retry_policy.ts";
import {
  uploadObject,
  withRetries,
  type WorkerEndpoint,
  type WorkerOutcome,
} from "./worker_client.ts";
import {
  concatParts,
  type ManifestBytes,
  PARQUET_CONTENT_TYPE,
  UnreadableManifestError,
  writeFileAtomically,
} from "./parquet.ts";
import { type BuiltManifest, ManifestBuilder, TWO_THREADS_FROM_ROWS } from "./manifest_builder.ts";
import { UsageError } from "./errors.ts";
import type { DownloadRow, DownloadStore } from "./store.ts";
import type { FromCheckpointWorker, ToCheckpointWorker } from "./checkpoint_worker.ts";

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

/**
 * The checkpoint thread's nice value on Linux (the dispatch loop's is 0, the lowest 19): on a
 * machine with no CPU to spare, committing and checkpointing yield to dispatch, and catch up
 * while it waits on the network. ingest.ts bounds how far commits may fall behind.
 */
export const CHECKPOINT_THREAD_NICENESS = 10;

/** Shortest time from one checkpoint's start to the next one's. */
export const MIN_CHECKPOINT_INTERVAL_MS = 1000;

/**
 * The average rate, in bytes a second, that mid-run manifest uploads may take: after uploading
 * a manifest of `size` bytes, the next upload waits at least `size` divided by this. A manifest up
 * to 2 MiB goes up with every checkpoint; a 19 MiB one (a million URLs) every 10 s or so, with
 * local checkpoints in between, so that it neither fills the operator's uplink nor keeps the
 * worker busy receiving it. The final manifest is always uploaded.
 */
export const MANIFEST_UPLOAD_BYTES_PER_SECOND = 2 * 1024 * 1024;

/** The message telling the operator that `path` is in the way. */
function unreadableMessage(path: string, why: string): string {
  return `${path} exists but cannot be merged into: ${why}. ` +
    `Move it away, or pass --replace-parquet to overwrite it with this database's rows`;
}

/**
 * Writes the manifest of `store`'s database to `path`, atomically, keeping the rows of an
 * existing manifest there that the database lacks (the database wins for a url both hold).
 * A database of {@link TWO_THREADS_FROM_ROWS} rows or more is read on two threads. Returns what
 * was written.
 *
 * @throws {UsageError} when `path` exists but is not a readable manifest, unless
 * `replaceExisting` is set, in which case it is overwritten with the database's rows alone.
 */
export async function exportManifest(
  store: DownloadStore,
  path: string,
  { replaceExisting = false }: { replaceExisting?: boolean } = {},
): Promise<BuiltManifest> {
  const builder = new ManifestBuilder(store.database, {
    twoThreadsFromRows: TWO_THREADS_FROM_ROWS,
  });
  if (!replaceExisting) {
    try {
      await builder.mergeExisting(path);
    } catch (error) {
      if (error instanceof UnreadableManifestError) {
        throw new UsageError(unreadableMessage(path, error.message));
      }
      throw error;
    }
  }
  await builder.loadDatabase();
  const built = builder.build();
  await writeFileAtomically(path, built.parts);
  return built;
}

/**
 * Uploads `bytes` with PUT, retrying transient failures under `policy`; `signal` aborts the
 * request under way (its outcome is `interrupted`) and any retry still to come.
 */
export function uploadWithRetries(
  endpoint: WorkerEndpoint,
  key: string,
  bytes: Uint8Array<ArrayBuffer> | (() => Promise<ReadableStream<Uint8Array>>),
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<{ outcome: WorkerOutcome; attempts: number }> {
  return withRetries(policy, async () => {
    const body = typeof bytes === "function" ? await bytes() : bytes;
    return await uploadObject(endpoint, key, body, PARQUET_CONTENT_TYPE, signal);
  }, signal);
}

/**
 * Manifests up to this size are uploaded as one buffer, with a Content-Length; larger ones are
 * streamed (chunked) from the parts they were built from, as sending a buffer makes fetch hold
 * copies of it.
 */
export const STREAM_UPLOAD_BYTES = 8 * 1024 * 1024;

/**
 * Uploads a built manifest under `upload`'s settings, from memory: the file just written holds
 * the same bytes, and reading it back would cost each checkpoint a read of the whole manifest.
 */
export async function uploadManifest(
  manifest: ManifestBytes,
  upload: NonNullable<CheckpointTarget["upload"]>,
  streamFromBytes = STREAM_UPLOAD_BYTES,
): Promise<{ outcome: WorkerOutcome; attempts: number }> {
  const body = manifest.size <= streamFromBytes
    ? concatParts(manifest)
    : () => Promise.resolve(ReadableStream.from(manifest.parts));
  return await uploadWithRetries(upload.endpoint, upload.key, body, upload.policy, upload.signal);
}

/**
 * Writes a built manifest to the target atomically, then uploads it if asked. `started` is when
 * building it began (for the export time).
 */
export async function writeAndUpload(
  manifest: BuiltManifest,
  target: CheckpointTarget,
  started: number,
): Promise<CheckpointResult> {
  await writeFileAtomically(target.path, manifest.parts);
  return await uploadExported(manifest, performance.now() - started, target);
}

/**
 * Runs one checkpoint on this thread: export (merging an existing manifest), then upload if
 * asked. Never throws for an upload failure.
 */
export async function runCheckpoint(
  store: DownloadStore,
  target: CheckpointTarget,
): Promise<CheckpointResult> {
  const started = performance.now();
  const manifest = await exportManifest(store, target.path);
  return await uploadExported(manifest, performance.now() - started, target);
}

async function uploadExported(
  manifest: BuiltManifest,
  exportMs: number,
  target: CheckpointTarget,
): Promise<CheckpointResult> {
  const at = new Date();
  const { rows, size } = manifest;
  if (target.upload === null) return { rows, bytes: size, exportMs, at, upload: null };
  const { outcome, attempts } = await uploadManifest(manifest, target.upload);
  return {
    rows,
    bytes: size,
    exportMs,
    at,
    upload: { ok: outcome.ok, error: outcome.ok ? null : outcome.error, attempts },
  };
}

/** The checkpoint Web Worker, seen from the thread that commits rows. */
export class CheckpointWorker {
  readonly #worker: Worker;
  #path = "";
  readonly #waiting = new Map<number, PromiseWithResolvers<CheckpointResult>>();
  readonly #commits = new Map<number, PromiseWithResolvers<void>>();
  readonly #opened = Promise.withResolvers<number>();
  readonly #closed = Promise.withResolvers<void>();
  #nextId = 1;
  #failure: Error | null = null;

  /**
   * Starts the worker thread, which loads its modules meanwhile; {@link open} gives it work.
   * Call {@link close} (or {@link discard} if it was never opened) when done.
   */
  constructor() {
    this.#worker = new Worker(new URL("./checkpoint_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker.onmessage = (event: MessageEvent<FromCheckpointWorker>) =>
      this.#receive(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`checkpoint worker failed: ${event.message}`));
    };
  }

  /**
   * Opens the database at `db`: the worker reads an existing manifest at the target path
   * (unless `replaceExisting`), then the database. Resolves once the existing file is judged.
   *
   * @throws {UsageError} when the existing manifest is not readable and not to be replaced.
   */
  async open(
    options: { db: string; target: CheckpointTarget; replaceExisting: boolean },
  ): Promise<void> {
    this.#path = options.target.path;
    this.#post({ type: "open", ...options });
    await this.#opened.promise;
  }

  /** Stops the worker at once; for a worker that never committed anything. */
  discard(): void {
    this.#worker.terminate();
  }

  #post(message: ToCheckpointWorker): void {
    this.#worker.postMessage(message);
  }

  #receive(message: FromCheckpointWorker): void {
    switch (message.type) {
      case "opened":
        this.#opened.resolve(message.kept);
        return;
      case "unreadable":
        this.#opened.reject(new UsageError(unreadableMessage(this.#path, message.message)));
        return;
      case "committed":
        this.#commits.get(message.id)?.resolve();
        this.#commits.delete(message.id);
        return;
      case "commit-failed":
        this.#commits.get(message.id)?.reject(new Error(`commit failed: ${message.message}`));
        this.#commits.delete(message.id);
        return;
      case "checkpoint":
        this.#waiting.get(message.id)?.resolve(message.result);
        this.#waiting.delete(message.id);
        return;
      case "checkpoint-failed":
        this.#waiting.get(message.id)?.reject(new Error(message.message));
        this.#waiting.delete(message.id);
        return;
      case "crashed":
        this.#fail(new Error(`checkpoint worker failed: ${message.message}`));
        return;
      case "closed":
        this.#closed.resolve();
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#opened.reject(error);
    this.#closed.resolve();
    for (const waiting of [...this.#waiting.values(), ...this.#commits.values()]) {
      waiting.reject(error);
    }
    this.#waiting.clear();
    this.#commits.clear();
  }

  /** Commits `rows` to the database (on the worker's thread); resolves once committed. */
  commit(rows: DownloadRow[]): Promise<void> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const waiting = Promise.withResolvers<void>();
    this.#commits.set(id, waiting);
    this.#post({ type: "commit", id, rows });
    return waiting.promise;
  }

  /** Runs a checkpoint of every row committed so far; `upload` says whether to upload it too. */
  checkpoint({ upload }: { upload: boolean }): Promise<CheckpointResult> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const waiting = Promise.withResolvers<CheckpointResult>();
    this.#waiting.set(id, waiting);
    this.#post({ type: "checkpoint", id, upload });
    return waiting.promise;
  }

  /** Abandons any manifest upload under way or to come (the operator's second Ctrl-C). */
  abortUploads(): void {
    this.#post({ type: "abort-uploads" });
  }

  /** Lets the worker close its database, then stops it. */
  async close(): Promise<void> {
    if (this.#failure === null) {
      this.#post({ type: "close" });
      await this.#closed.promise;
    }
    this.#worker.terminate();
  }
}

/** Told when checkpoints start and end (for `deno task bench`). */
export interface CheckpointObserver {
  started(): void;
  ended(result: CheckpointResult | Error): void;
}

/**
 * Serialises checkpoints: at most one runs, requests made meanwhile fold into one more, and the
 * next starts no sooner than {@link MIN_CHECKPOINT_INTERVAL_MS} after the previous one started
 * (or the scheduler was made) nor sooner than the previous one took after it ended. Each says
 * whether to upload the manifest: the final one always does, others when the upload budget
 * ({@link MANIFEST_UPLOAD_BYTES_PER_SECOND}) allows.
 */
export class CheckpointScheduler {
  readonly #run: (options: { upload: boolean }) => Promise<CheckpointResult>;
  readonly #onResult: (result: CheckpointResult | Error) => void;
  readonly #observer: CheckpointObserver | null;
  readonly #minIntervalMs: number;
  readonly #uploadBytesPerSecond: number;
  #lastUpload: { startedAt: number; bytes: number } | null = null;
  #running: Promise<void> | null = null;
  #pending = false;
  #nextStart = 0;
  #pause: { timer: ReturnType<typeof setTimeout>; resume: () => void } | null = null;
  /** Checkpoints completed, the final one included. */
  completed = 0;
  /** The last checkpoint's result. */
  last: CheckpointResult | null = null;

  /**
   * @param run performs one checkpoint, uploading the manifest when told to.
   * @param onResult told of each checkpoint's result, or of the error that stopped it.
   * @param options `observer` told of starts and ends; `minIntervalMs` between starts;
   * `uploadBytesPerSecond` the upload budget.
   */
  constructor(
    run: (options: { upload: boolean }) => Promise<CheckpointResult>,
    onResult: (result: CheckpointResult | Error) => void,
    options: {
      observer?: CheckpointObserver;
      minIntervalMs?: number;
      uploadBytesPerSecond?: number;
    } = {},
  ) {
    this.#run = run;
    this.#onResult = onResult;
    this.#observer = options.observer ?? null;
    this.#minIntervalMs = options.minIntervalMs ?? MIN_CHECKPOINT_INTERVAL_MS;
    this.#uploadBytesPerSecond = options.uploadBytesPerSecond ?? MANIFEST_UPLOAD_BYTES_PER_SECOND;
    this.#nextStart = performance.now() + this.#minIntervalMs;
  }

  /** Asks for a checkpoint soon; folded into the next one if one is running or pending. */
  request(): void {
    this.#pending = true;
    this.#running ??= this.#loop();
  }

  async #loop(): Promise<void> {
    while (this.#pending) {
      const wait = this.#nextStart - performance.now();
      if (wait > 0) await this.#sleep(wait);
      if (!this.#pending) break; // finish() took over
      this.#pending = false;
      const started = performance.now();
      await this.#once(false);
      const took = performance.now() - started;
      this.#nextStart = started + Math.max(this.#minIntervalMs, 2 * took);
    }
    this.#running = null;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const resume = () => {
        clearTimeout(timer);
        this.#pause = null;
        resolve();
      };
      const timer = setTimeout(resume, ms);
      this.#pause = { timer, resume };
    });
  }

  /** Whether a mid-run checkpoint starting now may upload, given the last upload's size. */
  #uploadDue(now: number): boolean {
    if (this.#lastUpload === null) return true;
    const wait = Math.max(
      this.#minIntervalMs,
      this.#lastUpload.bytes / this.#uploadBytesPerSecond * 1000,
    );
    return now - this.#lastUpload.startedAt >= wait;
  }

  async #once(final: boolean): Promise<CheckpointResult | Error> {
    let result: CheckpointResult | Error;
    this.#observer?.started();
    const started = performance.now();
    try {
      result = await this.#run({ upload: final || this.#uploadDue(started) });
      if (result.upload !== null) this.#lastUpload = { startedAt: started, bytes: result.bytes };
      this.last = result;
      this.completed++;
    } catch (error) {
      result = error instanceof Error ? error : new Error(String(error));
    }
    this.#observer?.ended(result);
    this.#onResult(result);
    return result;
  }

  /** Waits for any running checkpoint, then runs the final one, which sees every committed row. */
  async finish(): Promise<CheckpointResult | Error> {
    this.#pending = false;
    this.#pause?.resume();
    while (this.#running !== null) await this.#running;
    return await this.#once(true);
  }
}
