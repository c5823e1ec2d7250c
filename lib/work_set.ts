/**
 * Deciding what to send: the URL list is streamed into a temporary SQLite table (deduplicated
 * there, so millions of URLs never sit in a JS Set), then joined with `downloads` to find what is
 * already archived and which URLs would overwrite each other's object in the bucket.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { invalidUrlReason } from "./url_list.ts";
import { objectName } from "./object_key.ts";

/** What to do when two URLs would be stored at the same object key. */
export type KeyCollisionMode = "refuse" | "skip" | "allow";

/** How the work set is chosen. */
export interface PlanOptions {
  datasetId: string;
  /** Skip URLs whose row is already `success`. */
  resume: boolean;
  /** Send every URL whatever the database says. */
  forceRefresh: boolean;
  onKeyCollision: KeyCollisionMode;
}

/** URLs that the worker would store under one object name. */
export interface CollisionGroup {
  name: string;
  /** The URL that keeps the key (an archived one if any, else the first listed), then the rest. */
  urls: string[];
}

/** A listed entry that will not be sent, and why; recorded as `skipped`. */
export interface SkippedEntry {
  url: string;
  reason: string;
}

/** The outcome of planning: counts for the operator and what to record before sending. */
export interface WorkPlan {
  /** Distinct entries listed. */
  listed: number;
  /** Lines repeating an earlier entry. */
  duplicates: number;
  /** Entries that are not absolute http(s) URLs. */
  invalid: SkippedEntry[];
  /** URLs already `success`, not sent again. */
  alreadyDone: number;
  /** Groups of URLs sharing an object name, each with two URLs or more. */
  collisions: CollisionGroup[];
  /** URLs left out because another URL owns their key (`skip` mode). */
  collisionSkipped: SkippedEntry[];
  /** URLs to send. */
  toSend: number;
}

const BATCH = 10_000;
const PAGE = 1_000;

/** The operator's list, staged in a temporary table of the database's connection. */
export class WorkSet {
  readonly #db: DatabaseSync;
  #listed = 0;
  #duplicates = 0;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Stages `entries` (as read from the URL list) in a fresh temporary table. */
  static async load(db: DatabaseSync, entries: AsyncIterable<string>): Promise<WorkSet> {
    db.exec(`DROP TABLE IF EXISTS temp.listed;
      CREATE TEMP TABLE listed (
        seq INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, name TEXT, invalid_reason TEXT,
        to_send INTEGER NOT NULL DEFAULT 0)`);
    const set = new WorkSet(db);
    const insert = db.prepare(
      "INSERT OR IGNORE INTO listed (url, name, invalid_reason) VALUES (?, ?, ?)",
    );
    let inBatch = 0;
    db.exec("BEGIN");
    try {
      for await (const url of entries) {
        const reason = invalidUrlReason(url);
        const { changes } = insert.run(url, reason === null ? objectName(url) : null, reason);
        if (changes === 0) set.#duplicates++;
        else set.#listed++;
        if (++inBatch === BATCH) {
          db.exec("COMMIT; BEGIN");
          inBatch = 0;
        }
      }
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    return set;
  }

  /**
   * Marks what to send and reports what will not be. In `refuse` mode, colliding URLs stay marked
   * (the caller refuses to start); in `skip` mode all but the owner of each key are unmarked.
   */
  plan(options: PlanOptions): WorkPlan {
    const db = this.#db;
    db.exec("UPDATE listed SET to_send = (invalid_reason IS NULL)");
    let alreadyDone = 0;
    if (options.resume && !options.forceRefresh) {
      alreadyDone = Number(
        db.prepare(`UPDATE listed SET to_send = 0 WHERE to_send = 1 AND EXISTS
          (SELECT 1 FROM downloads d WHERE d.url = listed.url AND d.status = 'success')`)
          .run().changes,
      );
    }
    const invalid = db.prepare(
      "SELECT url, invalid_reason AS reason FROM listed WHERE invalid_reason IS NOT NULL ORDER BY seq",
    ).all() as unknown as SkippedEntry[];
    const collisions = options.onKeyCollision === "allow"
      ? []
      : this.#collisions(options.datasetId);
    const collisionSkipped: SkippedEntry[] = [];
    if (options.onKeyCollision === "skip") {
      const unmark = db.prepare("UPDATE listed SET to_send = 0 WHERE url = ?");
      for (const group of collisions) {
        for (const url of group.urls.slice(1)) {
          unmark.run(url);
          collisionSkipped.push({
            url,
            reason: `object name ${group.name} already belongs to ${group.urls[0]}`,
          });
        }
      }
    }
    const toSend = (db.prepare("SELECT count(*) AS n FROM listed WHERE to_send = 1").get() as {
      n: number;
    }).n;
    return {
      listed: this.#listed,
      duplicates: this.#duplicates,
      invalid,
      alreadyDone,
      collisions,
      collisionSkipped,
      toSend,
    };
  }

  /**
   * Groups of two or more URLs with one object name, among those to send and those of this
   * dataset already archived (which own their keys). Only groups with a URL to send are returned.
   */
  #collisions(datasetId: string): CollisionGroup[] {
    const db = this.#db;
    db.function("d4c_object_name", { deterministic: true }, (url) => {
      try {
        return objectName(String(url));
      } catch {
        return null;
      }
    });
    const members = db.prepare(`
      WITH members AS (
        SELECT d4c_object_name(d.url) AS name, d.url AS url, 0 AS rank, 0 AS seq
          FROM downloads d
          WHERE d.status = 'success' AND d.dataset_id = :dataset
            AND NOT EXISTS (SELECT 1 FROM listed l WHERE l.url = d.url AND l.to_send = 1)
        UNION ALL
        SELECT name, url, 1, seq FROM listed WHERE to_send = 1
      ),
      shared AS (
        SELECT name FROM members GROUP BY name HAVING count(*) > 1 AND max(rank) = 1
      )
      SELECT name, url FROM members WHERE name IN (SELECT name FROM shared)
      ORDER BY name, rank, seq`).iterate({ dataset: datasetId }) as IterableIterator<{
      name: string;
      url: string;
    }>;
    const groups: CollisionGroup[] = [];
    for (const { name, url } of members) {
      const last = groups.at(-1);
      if (last?.name === name) last.urls.push(url);
      else groups.push({ name, urls: [url] });
    }
    return groups;
  }

  /** The URLs to send, counted by the status of their row in `downloads` (`null`: no row). */
  toSendByStatus(): Map<string | null, number> {
    const rows = this.#db.prepare(`SELECT d.status AS status, count(*) AS n FROM listed l
      LEFT JOIN downloads d ON d.url = l.url WHERE l.to_send = 1 GROUP BY d.status`)
      .all() as { status: string | null; n: number }[];
    return new Map(rows.map((row) => [row.status, row.n]));
  }

  /** The URLs to send, in list order, read a page at a time. */
  *pending(): Generator<string> {
    const page = this.#db.prepare(
      "SELECT seq, url FROM listed WHERE to_send = 1 AND seq > ? ORDER BY seq LIMIT ?",
    );
    let after = 0;
    while (true) {
      const rows = page.all(after, PAGE) as { seq: number; url: string }[];
      for (const row of rows) yield row.url;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1].seq;
    }
  }
}
