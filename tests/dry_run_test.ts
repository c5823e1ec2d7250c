import assert from "node:assert/strict";
import { startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { DownloadStore, openDatabase } from "../lib/store.ts";
import type { DryRunReport } from "../lib/dry_run.ts";

const LIST = [
  "https://e.org/x/done.zip",
  "https://e.org/x/failed.zip",
  "https://e.org/x/new-1.zip",
  "https://e.org/x/new-2.zip",
  "https://e.org/x/new-1.zip",
  "not a url",
  "https://e.org/y/new-1.zip",
].join("\n");

function seed(path: string): void {
  const db = openDatabase(path);
  const row = (url: string, status: "success" | "failed") => ({
    url,
    dataset_id: "d",
    status,
    http_status: status === "success" ? 200 : 503,
    etag: null,
    error: status === "success" ? null : "HTTP 503: busy",
    started_at: "2026-03-12T21:00:00.000Z",
    finished_at: null,
    multipart_part_size: null,
    multipart_number_parts: null,
  });
  new DownloadStore(db).record([
    row("https://e.org/x/done.zip", "success"),
    row("https://e.org/x/failed.zip", "failed"),
  ]);
  db.close();
}

function rowCount(path: string): number {
  const db = openDatabase(path);
  try {
    return new DownloadStore(db).count();
  } finally {
    db.close();
  }
}

async function withList(test: (dir: string, args: string[]) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/urls.txt`, LIST);
    await test(dir, [
      "--urls",
      `${dir}/urls.txt`,
      "--dataset-id",
      "d",
      "--db",
      `${dir}/db.sqlite`,
      "--out",
      `${dir}/out`,
      "--key-prefix",
      "p",
      "--dry-run",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("--dry-run counts what a run would send and sends nothing, not even the token check", async () => {
  const worker = startFakeWorker();
  try {
    await withList(async (dir, args) => {
      seed(`${dir}/db.sqlite`);
      const before = await Deno.readFile(`${dir}/db.sqlite`);
      const result = await runCli([
        ...args,
        "--worker-url",
        worker.url,
        "--auth-token",
        worker.token,
        "--on-key-collision",
        "skip",
        "--json",
      ]);
      assert.equal(result.code, 0, result.stderr);
      const report: DryRunReport = JSON.parse(result.stdout);
      assert.deepEqual(report, {
        dataset_id: "d",
        listed: 6,
        duplicates: 1,
        invalid: 1,
        already_done: 1,
        to_send: 3,
        new: 2,
        failed_to_retry: 1,
        sent_again: 0,
        on_key_collision: "skip",
        key_collisions: 1,
        colliding_urls: 1,
        would_refuse: false,
        first_keys: [
          { url: "https://e.org/x/failed.zip", key: "p/failed.zip" },
          { url: "https://e.org/x/new-1.zip", key: "p/new-1.zip" },
          { url: "https://e.org/x/new-2.zip", key: "p/new-2.zip" },
        ],
      });
      assert.equal(worker.requests.length, 0);
      assert.deepEqual(await Deno.readFile(`${dir}/db.sqlite`), before, "database untouched");
      assert.equal(rowCount(`${dir}/db.sqlite`), 2, "no skipped rows recorded");
      assert.equal(await Deno.stat(`${dir}/out.parquet`).catch(() => null), null);
    });
  } finally {
    await worker.close();
  }
});

Deno.test("--dry-run needs no token, creates no database, and tells of a refusal", async () => {
  await withList(async (dir, args) => {
    const result = await runCli(args, { env: { D4C_INGESTOR_AUTH_TOKEN: "" } });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    assert.equal(
      result.stdout,
      [
        "dry run for d: nothing was sent",
        "listed 6 URL(s) (1 duplicate line(s) ignored), 1 invalid, 0 already archived",
        "would send 5: 5 new, 0 failed to retry, 0 sent again",
        "key collisions: 1 key(s) shared, 1 URL(s) affected; " +
        "a run would refuse to start (see --on-key-collision)",
        "first object keys:",
        "  p/done.zip  <- https://e.org/x/done.zip",
        "  p/failed.zip  <- https://e.org/x/failed.zip",
        "  p/new-1.zip  <- https://e.org/x/new-1.zip",
        "  p/new-2.zip  <- https://e.org/x/new-2.zip",
        "  p/new-1.zip  <- https://e.org/y/new-1.zip",
        "",
      ].join("\n"),
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["urls.txt"]);
  });
});
