/**
 * One ingest run from start to finish: check the inputs, prove the token, plan the work, send it,
 * checkpoint, and summarise. Returns the process exit code.
 *
 * @module
 */

import { basename } from "node:path";
import { UsageError } from "./errors.ts";
import { openUrlList, readUrlBatches } from "./url_list.ts";
import {
  databaseExists,
  type DownloadRow,
  openDatabase,
  removeDatabase,
  useWriteAheadLog,
} from "./store.ts";
import { type KeyCollisionMode, type WorkPlan, WorkSet } from "./work_set.ts";
import { keyUnderPrefix } from "./object_key.ts";
import { listenForStopSignals, stopListening, type StopSignal } from "./signals.ts";
import { preflight, type WorkerEndpoint } from "./worker_client.ts";
import type { RetryPolicy } from "./retry_policy.ts";
import { ingest, zeroCounters } from "./ingest.ts";
import { CheckpointScheduler, type CheckpointTarget, CheckpointWorker } from "./checkpoint.ts";
import { benchRecorderFromEnv } from "./bench_stats.ts";
import { ProgressDisplay } from "./progress.ts";
import { buildRunSummary, formatRunSummary, type RunEnd } from "./summary.ts";
import { dryRunReport, formatDryRun } from "./dry_run.ts";
import { TokenBucket } from "./rate_limit.ts";

/** Exit codes, as the README documents them. */
export const EXIT = {
  ok: 0,
  someFailed: 1,
  usage: 2,
  sigint: 130,
  sigterm: 143,
} as const;

/** Everything the ingest command was told. */
export interface IngestCommandOptions {
  urls: string;
  datasetId: string;
  workerUrl: string;
  authToken: string;
  db: string;
  keyPrefix: string;
  out: string;
  concurrency: number;
  timeoutSeconds: number;
  policy: RetryPolicy;
  resume: boolean;
  forceRefresh: boolean;
  graceSeconds: number;
  onKeyCollision: KeyCollisionMode;
  logIntervalSeconds: number;
  /** Report what would be sent, send nothing. */
  dryRun: boolean;
  /** Most request starts per second, or `null` for no cap. */
  rate: number | null;
  /** No progress, only warnings and the summary. */
  quiet: boolean;
  /** The summary as one JSON object on `out`. */
  json: boolean;
  /** Overwrite `<out>.parquet` with this database's rows instead of merging into it. */
  replaceParquet: boolean;
}

/** Where the run's text goes. */
export interface Output {
  /** Progress and warnings. */
  err: (text: string) => void;
  /** The summary. */
  out: (text: string) => void;
  /** Whether `err` is a terminal. */
  errIsTerminal: boolean;
  /** Whether `err` may be coloured (a terminal, and `NO_COLOR` unset). */
  errColour: boolean;
}

/** Collision groups shown when refusing to start. */
const SHOWN_GROUPS = 5;

/** Runs the ingest command; returns the exit code. Throws {@link UsageError} for bad input. */
export async function runIngest(options: IngestCommandOptions, output: Output): Promise<number> {
  const stream = await openUrlList(options.urls);
  const created = !databaseExists(options.db);
  // Until the run is sure to record, an existing database keeps its bytes and a new one is removed;
  // a dry run never records, and reads a missing database as an empty one in memory.
  const db = openDatabase(options.dryRun && created ? ":memory:" : options.db, {
    writeAheadLog: false,
  });
  let recording = false;
  // Started now so that its thread loads while the list does.
  const exporter = new CheckpointWorker();
  let opened = false;
  try {
    const endpoint: WorkerEndpoint = {
      url: options.workerUrl,
      authToken: options.authToken,
      timeoutMs: options.timeoutSeconds * 1000,
    };
    if (!options.dryRun) await preflight(endpoint, options.policy);
    const workSet = await WorkSet.load(db, readUrlBatches(stream, `--urls ${options.urls}`));
    const plan = workSet.plan({
      datasetId: options.datasetId,
      resume: options.resume,
      forceRefresh: options.forceRefresh,
      onKeyCollision: options.onKeyCollision,
    });
    if (options.dryRun) {
      const report = dryRunReport(workSet, plan, options);
      output.out(options.json ? `${JSON.stringify(report)}\n` : formatDryRun(report));
      return EXIT.ok;
    }
    if (options.onKeyCollision === "refuse" && plan.collisions.length > 0) {
      throw new UsageError(describeCollisions(plan, options.keyPrefix));
    }
    const target: CheckpointTarget = {
      path: `${options.out}.parquet`,
      upload: {
        endpoint,
        key: keyUnderPrefix(options.keyPrefix, `${basename(options.out)}.parquet`),
        policy: options.policy,
      },
    };
    const skipped = [...plan.invalid, ...plan.collisionSkipped];
    if (plan.toSend === 0 && skipped.length === 0 && await fileExists(target.path)) {
      output.out(
        `nothing to do: all ${plan.listed} listed URL(s) are already archived ` +
          `(${target.path} left as it is)\n`,
      );
      return EXIT.ok;
    }
    // Opened before anything is recorded: an unreadable manifest is refused with the database as it
    // was. It reads the database as it is; the skipped rows reach it through commit.
    await exporter.open({ db: options.db, target, replaceExisting: options.replaceParquet });
    opened = true;
    const now = new Date().toISOString();
    recording = true;
    useWriteAheadLog(db);
    await exporter.commit(skipped.map(({ url, reason }): DownloadRow => ({
      url,
      dataset_id: options.datasetId,
      status: "skipped",
      http_status: null,
      etag: null,
      error: reason,
      started_at: now,
      finished_at: now,
      multipart_part_size: null,
      multipart_number_parts: null,
    })));
    return await send(options, output, workSet, plan, endpoint, exporter, target);
  } finally {
    if (opened) await exporter.close();
    else exporter.discard();
    db.close();
    if (created && !recording) removeDatabase(options.db);
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function describeCollisions(plan: WorkPlan, keyPrefix: string): string {
  const shown = plan.collisions.slice(0, SHOWN_GROUPS).map((group) =>
    `${keyUnderPrefix(keyPrefix, group.name)} <- ${group.urls.slice(0, 3).join(", ")}${
      group.urls.length > 3 ? `, … (${group.urls.length} URLs)` : ""
    }`
  ).join("; ");
  return `${plan.collisions.length} object key(s) would be written by more than one URL, ` +
    `so later downloads would overwrite earlier ones: ${shown}. ` +
    `Use --on-key-collision=skip to send only the first URL of each, or =allow to overwrite`;
}

async function send(
  options: IngestCommandOptions,
  output: Output,
  workSet: WorkSet,
  plan: WorkPlan,
  endpoint: WorkerEndpoint,
  exporter: CheckpointWorker,
  target: CheckpointTarget,
): Promise<number> {
  const counters = zeroCounters(plan.toSend);
  const parquetPath = target.path;
  const uploadKey = target.upload!.key;
  const progress = new ProgressDisplay(counters, {
    write: output.err,
    mode: options.quiet ? "quiet" : output.errIsTerminal ? "bar" : "lines",
    colour: output.errColour,
    logIntervalMs: options.logIntervalSeconds * 1000,
  });
  let answers = 0;
  const bench = benchRecorderFromEnv(() => answers);
  const checkpoints = new CheckpointScheduler(
    (options) => exporter.checkpoint(options),
    (result) => {
      if (result instanceof Error) progress.log(`checkpoint failed: ${result.message}`);
      else {
        progress.checkpoint(result.at.getTime());
        if (result.upload?.ok === false) {
          progress.log(`checkpoint upload to ${uploadKey} failed: ${result.upload.error}`);
        }
      }
    },
    {
      observer: bench === null ? undefined : {
        started: () => bench.checkpointStarted(),
        ended: (result) => bench.checkpointEnded(result instanceof Error ? null : result.exportMs),
      },
    },
  );

  const graceful = new AbortController();
  const immediate = new AbortController();
  let signalName: StopSignal | null = null;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onSignal = (name: StopSignal) => () => {
    if (signalName === null) {
      signalName = name;
      progress.log(
        `${name}: finishing ${counters.inFlight} request(s) in flight (up to ${options.graceSeconds} s); ` +
          `send it again to abort them`,
      );
      graceful.abort();
      graceTimer = setTimeout(() => immediate.abort(), options.graceSeconds * 1000);
    } else {
      progress.log(`${name}: aborting ${counters.inFlight} request(s) in flight`);
      immediate.abort();
      exporter.abortUploads();
    }
  };
  // Listening until the final checkpoint is done, so that a second signal can cut its upload short.
  const listeners = listenForStopSignals(onSignal);
  const started = performance.now();
  bench?.dispatching(true);
  let end;
  let final;
  try {
    end = await ingest(
      workSet.pending(),
      (rows) => exporter.commit(rows),
      {
        datasetId: options.datasetId,
        keyPrefix: options.keyPrefix,
        endpoint,
        concurrency: options.concurrency,
        policy: options.policy,
        pacer: options.rate === null ? undefined : new TokenBucket(options.rate),
      },
      counters,
      { graceful: graceful.signal, immediate: immediate.signal },
      {
        onCheckpointDue: () => checkpoints.request(),
        onAnswer: bench === null ? undefined : () => answers++,
        onWarning: (message) => progress.log(message),
      },
    );
    // The final checkpoint runs once every answer is in: none can come while it runs.
    bench?.dispatching(false);
    clearTimeout(graceTimer);
    final = await checkpoints.finish();
  } finally {
    clearTimeout(graceTimer);
    stopListening(listeners);
    progress.stop();
  }
  bench?.write(final instanceof Error ? 0 : final.rows);
  const wallSeconds = (performance.now() - started) / 1000;
  const runEnd: RunEnd = end === "token-rejected"
    ? "token-rejected"
    : signalName !== null
    ? "interrupted"
    : "completed";
  const someFailed = counters.failed > 0 || final instanceof Error || final.upload?.ok === false;
  const exitCode = runEnd === "token-rejected"
    ? EXIT.usage
    : signalName !== null
    ? (signalName === "SIGINT" ? EXIT.sigint : EXIT.sigterm)
    : someFailed
    ? EXIT.someFailed
    : EXIT.ok;
  if (runEnd === "token-rejected") {
    output.err("the worker rejected the token (401) mid-run; fix the token and re-run to resume\n");
  }
  const summary = buildRunSummary({
    datasetId: options.datasetId,
    end: runEnd,
    exitCode,
    plan,
    counters,
    wallSeconds,
    parquetPath,
    uploadKey,
    final,
  });
  output.out(options.json ? `${JSON.stringify(summary)}\n` : formatRunSummary(summary));
  return exitCode;
}
