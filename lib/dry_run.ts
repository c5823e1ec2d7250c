/**
 * `--dry-run`: what a run would send, worked out from the list and the database alone. Nothing
 * is sent to the worker (not even the token check) and no row is recorded in the database.
 *
 * @module
 */

import { objectKey } from "./object_key.ts";
import type { KeyCollisionMode, WorkPlan, WorkSet } from "./work_set.ts";

/** Object keys shown as a sample of what would be written. */
export const SAMPLE_KEYS = 5;

/** What a run would do; the `--dry-run --json` object, field for field. */
export interface DryRunReport {
  dataset_id: string;
  /** Distinct URLs in the list. */
  listed: number;
  /** List lines repeating an earlier URL. */
  duplicates: number;
  /** Entries that are not http(s) URLs; a run records them as `skipped`. */
  invalid: number;
  /** URLs already archived, left out. */
  already_done: number;
  /** URLs a run would send: the sum of the next three. */
  to_send: number;
  /** Never seen in the database. */
  new: number;
  /** Recorded as `failed`, to be tried again. */
  failed_to_retry: number;
  /** Recorded as `success` or `skipped` and sent again (`--no-resume`, `--force-refresh`, …). */
  sent_again: number;
  on_key_collision: KeyCollisionMode;
  /** Object keys that more than one URL would write. */
  key_collisions: number;
  /** URLs that would overwrite (or, with `skip`, be left out for) another URL's object. */
  colliding_urls: number;
  /** Whether a run would refuse to start because of those collisions. */
  would_refuse: boolean;
  /** The first URLs a run would send, with the object key each would be written to. */
  first_keys: { url: string; key: string }[];
}

/** Builds the report from a planned work set. */
export function dryRunReport(
  workSet: WorkSet,
  plan: WorkPlan,
  options: { datasetId: string; keyPrefix: string; onKeyCollision: KeyCollisionMode },
): DryRunReport {
  const byStatus = workSet.toSendByStatus();
  const newCount = byStatus.get(null) ?? 0;
  const failed = byStatus.get("failed") ?? 0;
  const firstKeys: { url: string; key: string }[] = [];
  for (const url of workSet.pending()) {
    if (firstKeys.length === SAMPLE_KEYS) break;
    firstKeys.push({ url, key: objectKey(options.keyPrefix, url) });
  }
  return {
    dataset_id: options.datasetId,
    listed: plan.listed,
    duplicates: plan.duplicates,
    invalid: plan.invalid.length,
    already_done: plan.alreadyDone,
    to_send: plan.toSend,
    new: newCount,
    failed_to_retry: failed,
    sent_again: plan.toSend - newCount - failed,
    on_key_collision: options.onKeyCollision,
    key_collisions: plan.collisions.length,
    colliding_urls: plan.collisions.reduce((n, group) => n + group.urls.length - 1, 0),
    would_refuse: options.onKeyCollision === "refuse" && plan.collisions.length > 0,
    first_keys: firstKeys,
  };
}

/** The report for people, ending with a newline. */
export function formatDryRun(r: DryRunReport): string {
  const lines = [
    `dry run for ${r.dataset_id}: nothing was sent`,
    `listed ${r.listed} URL(s) (${r.duplicates} duplicate line(s) ignored), ` +
    `${r.invalid} invalid, ${r.already_done} already archived`,
    `would send ${r.to_send}: ${r.new} new, ${r.failed_to_retry} failed to retry, ` +
    `${r.sent_again} sent again`,
  ];
  if (r.key_collisions === 0) lines.push("key collisions: none");
  else {
    const what = r.would_refuse
      ? "a run would refuse to start (see --on-key-collision)"
      : r.on_key_collision === "skip"
      ? "a run would skip them"
      : "a run would overwrite objects";
    lines.push(
      `key collisions: ${r.key_collisions} key(s) shared, ${r.colliding_urls} URL(s) affected; ${what}`,
    );
  }
  if (r.first_keys.length > 0) {
    lines.push(
      "first object keys:",
      ...r.first_keys.map(({ url, key }) => `  ${key}  <- ${url}`),
    );
  }
  return lines.join("\n") + "\n";
}
