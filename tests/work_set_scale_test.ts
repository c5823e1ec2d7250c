import assert from "node:assert/strict";
import { join } from "node:path";
import { type DownloadRow, DownloadStore, openDatabase } from "../lib/store.ts";
import { WorkSet } from "../lib/work_set.ts";
import { readUrlBatches } from "../lib/url_list.ts";

const plan = {
  datasetId: "ds",
  resume: true,
  forceRefresh: false,
  onKeyCollision: "refuse",
} as const;

function recorded(url: string, status: DownloadRow["status"]): DownloadRow {
  return {
    url,
    dataset_id: "ds",
    status,
    http_status: status === "success" ? 200 : 502,
    etag: null,
    error: status === "success" ? null : "Source returned HTTP 503",
    started_at: "2026-03-12T21:00:00.000Z",
    finished_at: "2026-03-12T21:00:01.000Z",
    multipart_part_size: null,
    multipart_number_parts: null,
  };
}

async function* batches(lines: string[]) {
  // Small batches, so entries straddle them as they do in a long list.
  for (let i = 0; i < lines.length; i += 7) yield lines.slice(i, i + 7);
}

async function withStore(fn: (store: DownloadStore) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const db = openDatabase(join(dir, "state.sqlite"));
  try {
    await fn(new DownloadStore(db));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const url = (i: number) => `https://example.org/t/${i}.zip`;

Deno.test("archived, failed, invalid and repeated entries are told apart", async () => {
  await withStore(async (store) => {
    store.record([
      recorded(url(1), "success"),
      recorded(url(2), "failed"),
      recorded(url(3), "skipped"),
      recorded(url(4), "success"),
    ]);
    const lines = [url(1), url(2), "ftp://example.org/x.zip", url(3), url(5), url(1), url(6)];
    const set = await WorkSet.load(store.database, batches(lines));
    const result = set.plan(plan);
    assert.equal(result.listed, 6);
    assert.equal(result.duplicates, 1);
    assert.equal(result.alreadyDone, 1);
    assert.deepEqual(result.invalid.map((e) => e.url), ["ftp://example.org/x.zip"]);
    assert.equal(result.toSend, 4);
    assert.deepEqual([...set.pending()], [url(2), url(3), url(5), url(6)]);
  });
});

Deno.test("a list whose every URL is archived leaves nothing to send", async () => {
  await withStore(async (store) => {
    const urls = Array.from({ length: 50 }, (_, i) => url(i));
    store.record(urls.map((u) => recorded(u, "success")));
    const set = await WorkSet.load(store.database, batches([...urls, urls[3]]));
    const result = set.plan(plan);
    assert.equal(result.alreadyDone, 50);
    assert.equal(result.duplicates, 1);
    assert.equal(result.toSend, 0);
    assert.deepEqual([...set.pending()], []);
    // --no-resume sends them all again.
    const again = set.plan({ ...plan, resume: false });
    assert.equal(again.toSend, 50);
    assert.equal([...set.pending()].length, 50);
  });
});

Deno.test("a URL list is read the same in batches, with CRLF, BOM and comments", async () => {
  const text =
    "\uFEFF# header\r\nhttps://a.example/1\r\n\r\n  https://a.example/2  \n#x\nhttps://a.example/3";
  const bytes = new TextEncoder().encode(text);
  // One byte at a time: every line and the BOM straddle chunks.
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const byte of bytes) controller.enqueue(new Uint8Array([byte]));
      controller.close();
    },
  });
  const entries = [];
  for await (const batch of readUrlBatches(stream, "test")) entries.push(...batch);
  assert.deepEqual(entries, ["https://a.example/1", "https://a.example/2", "https://a.example/3"]);
});
