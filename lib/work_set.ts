/**
 * Deciding what to send: the URL list is streamed into a temporary SQLite table (deduplicated
 * there, so millions of URLs never sit in a JS Set), then joined with `downloads` to find what is
 * already archived and which URLs would overwrite each other's object in the bucket.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { invalidParsedReason } from "./url_list.ts";
import { objectName } from "./object_key.ts";
import { batchInserter } from "./store.ts";

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

/** An entry's object name and why it cannot be sent, parsing it once (a third of the cost). */
function classifyEntry(entry: string): { name: string | null; reason: string | null } {
  const url = URL.parse(entry);
  const reason = invalidParsedReason(url);
  return { name: reason === null ? objectName(url!) : null, reason };
}

const BATCH = 10_000;
const PAGE = 1_000;

/** The operator's list, staged in a temporary table of the database's connection. */
export class WorkSet {
  readonly #db: DatabaseSync;
  #listed = 0;
  #duplicates = 0;
  /** Distinct entries that are not http(s) URLs. */
  #invalid = 0;
  /** Whether plan ran already (load leaves to_send as a first plan expects). */
  #planned = false;
  /** Every valid URL listed is archived: nothing to send (set by plan, saves a rewrite). */
  #allArchived = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Stages `entries` (as read from the URL list) in a fresh temporary table, keeping the first of
   * repeated entries. The rows go in unindexed and the url index is built afterwards: for a list
   * of a million URLs that is four times faster than keeping a unique index up row by row.
   * `entries` may come one at a time or in batches (readUrlBatches, much faster for long lists).
   */
  static async load(
    db: DatabaseSync,
    entries: AsyncIterable<string | string[]>,
  ): Promise<WorkSet> {
    db.exec(`DROP TABLE IF EXISTS temp.listed;
      CREATE TEMP TABLE listed (
        seq INTEGER PRIMARY KEY, url TEXT NOT NULL, name TEXT, invalid_reason TEXT,
        to_send INTEGER NOT NULL DEFAULT 0)`);
    const set = new WorkSet(db);
    const insert = batchInserter(db, "listed (url, name, invalid_reason, to_send)", 4);
    let total = 0;
    let invalid = 0;
    db.exec("BEGIN");
    try {
      for await (const item of entries) {
        for (const url of typeof item === "string" ? [item] : item) {
          const { name, reason } = classifyEntry(url);
          if (reason !== null) invalid++;
          insert.add(url, name, reason, reason === null ? 1 : 0);
          if (++total % BATCH === 0) db.exec("COMMIT; BEGIN");
        }
      }
      insert.flush();
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    let distinct = total;
    // A second thread for SQLite's sorter: the index of a million-URL list builds a quarter faster.
    db.exec("PRAGMA threads = 2");
    try {
      db.exec("CREATE UNIQUE INDEX temp.listed_url ON listed (url)");
    } catch {
      // Repeated entries: keep the first of each.
      db.exec("CREATE INDEX temp.listed_url ON listed (url)");
      distinct = (db.prepare(`SELECT count(DISTINCT url) AS n FROM listed`).get() as { n: number })
        .n;
      db.exec(`DELETE FROM listed WHERE seq IN (SELECT seq FROM (
        SELECT seq, url, lag(url) OVER (ORDER BY url, seq) AS previous FROM listed)
        WHERE url = previous)`);
    }
    if (distinct < total && invalid > 0) {
      invalid = (db.prepare("SELECT count(*) AS n FROM listed WHERE invalid_reason IS NOT NULL")
        .get() as { n: number }).n;
    }
    set.#invalid = invalid;
    set.#listed = distinct;
    set.#duplicates = total - distinct;
    return set;
  }

  /**
   * Marks what to send and reports what will not be. In `refuse` mode, colliding URLs stay marked
   * (the caller refuses to start); in `skip` mode all but the owner of each key are unmarked.
   */
  plan(options: PlanOptions): WorkPlan {
    const db = this.#db;
    if (this.#planned) {
      db.exec(`UPDATE listed SET to_send = (invalid_reason IS NULL)
        WHERE to_send != (invalid_reason IS NULL)`);
    }
    this.#planned = true;
    this.#allArchived = false;
    let alreadyDone = 0;
    if (options.resume && !options.forceRefresh) alreadyDone = this.#markArchived();
    const invalid = this.#invalid === 0 ? [] : db.prepare(
      "SELECT url, invalid_reason AS reason FROM listed WHERE invalid_reason IS NOT NULL ORDER BY seq",
    ).all() as unknown as SkippedEntry[];
    // Without a URL to send there is nothing to collide (and no need to name every archived URL).
    const anyToSend = !this.#allArchived &&
      db.prepare("SELECT 1 FROM listed WHERE to_send = 1 LIMIT 1").get() !== undefined;
    const collisions = options.onKeyCollision === "allow" || !anyToSend
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
    const toSend = anyToSend
      ? (db.prepare("SELECT count(*) AS n FROM listed WHERE to_send = 1").get() as { n: number }).n
      : 0;
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
   * Unmarks the URLs already archived (`success`) and returns how many. On a large database the
   * lookups dominate a resume, so they are made cheap: the two url indexes are walked side by side
   * in url order without reading either table (a merge, in effect), and only the few listed URLs
   * recorded with another status are then looked at. When every URL is archived nothing is
   * written at all.
   */
  #markArchived(): number {
    const db = this.#db;
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const present = count(`SELECT count(*) AS n
      FROM listed AS l INDEXED BY listed_url CROSS JOIN downloads AS d ON d.url = l.url`);
    if (present === 0) return 0;
    // The status index, not the url one: few rows are not `success`.
    let notArchived = count(`SELECT count(*) AS n FROM downloads INDEXED BY ix_downloads_status
      WHERE status != 'success' AND url IN (SELECT url FROM listed)`);
    if (this.#invalid > 0) {
      notArchived += count(`SELECT count(*) AS n FROM listed AS l WHERE l.invalid_reason IS NOT NULL
        AND EXISTS (SELECT 1 FROM downloads AS d WHERE d.url = l.url AND d.status = 'success')`);
    }
    const archived = present - notArchived;
    if (archived === this.#listed - this.#invalid) {
      this.#allArchived = true;
    } else if (archived > 0) {
      db.exec(`UPDATE listed SET to_send = 0 WHERE seq IN (SELECT l.seq
        FROM listed AS l INDEXED BY listed_url CROSS JOIN downloads AS d ON d.url = l.url)`);
      db.exec(`UPDATE listed SET to_send = (invalid_reason IS NULL)
        WHERE url IN (SELECT url FROM downloads WHERE status != 'success')`);
    }
    return archived;
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
    if (this.#allArchived) return;
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
