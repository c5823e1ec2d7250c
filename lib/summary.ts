/**
 * The end-of-run summary: built once as plain data, then printed for people or, with `--json`,
 * as one JSON object for scripts.
 *
 * @module
 */

import prettyBytes from "pretty-bytes";
import prettyMs from "pretty-ms";
import type { RunCounters } from "./ingest.ts";
import type { WorkPlan } from "./work_set.ts";
import type { CheckpointResult } from "./checkpoint.ts";
import { doneCount, formatRate } from "./progress.ts";

/** Error messages listed in the summary and in `status`. */
export const TOP_ERRORS = 5;

/** An error message and how many URLs ended with it. */
export interface ErrorCount {
  error: string;
  count: number;
}

/** How the run ended. */
export type RunEnd = "completed" | "interrupted" | "token-rejected";

/** Everything the summary says; the `--json` object, field for field. */
export interface RunSummary {
  dataset_id: string;
  end: RunEnd;
  /** The process exit code (see the README's "Exit codes"). */
  exit_code: number;
  /** Distinct URLs in the list. */
  listed: number;
  /** List lines repeating an earlier URL, ignored. */
  duplicates: number;
  /** URLs already archived (`success`), not sent again. */
  already_done: number;
  /** URLs this run meant to send. */
  to_send: number;
  /** This run's results by status. */
  success: number;
  failed: number;
  /** Invalid URLs and key collisions left out, recorded as `skipped`. */
  skipped: number;
  /** URLs to send that were never finished (the run was stopped). */
  not_attempted: number;
  /** Retries sent. */
  retries: number;
  /** Sum of `size_bytes` of this run's successes. */
  bytes_archived: number;
  wall_seconds: number;
  /** Results (success or failed) per second over the whole run. */
  mean_rate_per_second: number;
  /** This run's most frequent failure messages, most frequent first. */
  top_errors: ErrorCount[];
  parquet: { path: string; rows: number | null; error: string | null };
  /** `null` when the manifest was not uploaded. */
  upload: { key: string; ok: boolean; attempts: number; error: string | null } | null;
}

/** The `limit` most frequent messages of `counts`, ties in first-seen order. */
export function topErrors(counts: ReadonlyMap<string, number>, limit = TOP_ERRORS): ErrorCount[] {
  return [...counts].map(([error, count]) => ({ error, count }))
    .sort((a, b) => b.count - a.count).slice(0, limit);
}

/** What the run did, as {@link buildRunSummary} needs it. */
export interface RunFacts {
  datasetId: string;
  end: RunEnd;
  exitCode: number;
  plan: WorkPlan;
  counters: RunCounters;
  wallSeconds: number;
  parquetPath: string;
  uploadKey: string;
  /** The final checkpoint's result, or the error that stopped it. */
  final: CheckpointResult | Error;
}

/** Builds the summary of one run. */
export function buildRunSummary(facts: RunFacts): RunSummary {
  const { plan, counters, final } = facts;
  const done = doneCount(counters);
  return {
    dataset_id: facts.datasetId,
    end: facts.end,
    exit_code: facts.exitCode,
    listed: plan.listed,
    duplicates: plan.duplicates,
    already_done: plan.alreadyDone,
    to_send: plan.toSend,
    success: counters.success,
    failed: counters.failed,
    skipped: plan.invalid.length + plan.collisionSkipped.length,
    not_attempted: counters.total - done,
    retries: counters.retries,
    bytes_archived: counters.bytes,
    wall_seconds: round(facts.wallSeconds, 3),
    mean_rate_per_second: facts.wallSeconds > 0 ? round(done / facts.wallSeconds, 3) : 0,
    top_errors: topErrors(counters.errors),
    parquet: final instanceof Error
      ? { path: facts.parquetPath, rows: null, error: final.message }
      : { path: facts.parquetPath, rows: final.rows, error: null },
    upload: final instanceof Error || final.upload === null ? null : {
      key: facts.uploadKey,
      ok: final.upload.ok,
      attempts: final.upload.attempts,
      error: final.upload.error,
    },
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** The error table of the summary and of `status`: count, then message. */
export function formatErrorCounts(errors: readonly ErrorCount[], indent = "  "): string[] {
  const width = Math.max(...errors.map((e) => String(e.count).length));
  return errors.map((e) => `${indent}${String(e.count).padStart(width)}  ${e.error}`);
}

/** The summary for people, ending with a newline. */
export function formatRunSummary(s: RunSummary): string {
  const lines = [
    `listed ${s.listed} URL(s) (${s.duplicates} duplicate line(s) ignored), ` +
    `${s.already_done} already archived`,
    `this run: ${s.success} success, ${s.failed} failed, ${s.skipped} skipped, ` +
    `${s.not_attempted} not attempted in ${prettyMs(s.wall_seconds * 1000)}` +
    (s.retries > 0 ? ` (${s.retries} retries)` : ""),
    `archived ${prettyBytes(s.bytes_archived)}, ${formatRate(s.mean_rate_per_second)} URL/s`,
  ];
  if (s.end === "interrupted") lines.push("interrupted: re-run the same command to resume");
  if (s.top_errors.length > 0) {
    lines.push("top errors:", ...formatErrorCounts(s.top_errors));
  }
  if (s.parquet.error !== null) lines.push(`parquet: export failed: ${s.parquet.error}`);
  else lines.push(`parquet: ${s.parquet.path} (${s.parquet.rows} rows)`);
  if (s.upload !== null) lines.push(formatUpload(s.upload));
  return lines.join("\n") + "\n";
}

/** The line telling where a manifest upload went, or why it failed. */
export function formatUpload(upload: NonNullable<RunSummary["upload"]>): string {
  return upload.ok
    ? `parquet upload: ok (${upload.key})`
    : `parquet upload: FAILED after ${upload.attempts} attempt(s): ${upload.error}`;
}
