import assert from "node:assert/strict";
import { startFakeWorker, successBody } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { rowsByUrl } from "./support/fixture.ts";

const URL_COUNT = 250;

function urlList(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `https://example.test/tiles/T${i}.zip`);
}

async function setup(count = URL_COUNT) {
  const dir = await Deno.makeTempDir();
  const urls = urlList(count);
  const lines = [
    "# orthoimagery tiles",
    "",
    ...urls.slice(0, 100),
    "   ",
    "# more",
    ...urls.slice(100),
  ];
  await Deno.writeTextFile(`${dir}/urls.txt`, lines.join("\n") + "\n");
  return { dir, urls, db: `${dir}/state.sqlite` };
}

function ingestArgs(dir: string, workerUrl: string, extra: string[] = []): string[] {
  return [
    "--urls",
    `${dir}/urls.txt`,
    "--dataset-id",
    "ds-1",
    "--worker-url",
    workerUrl,
    "--db",
    `${dir}/state.sqlite`,
    "--key-prefix",
    "archive/ds-1/",
    "--out",
    `${dir}/manifest`,
    "--retry-delay",
    "0.01",
    ...extra,
  ];
}

Deno.test("a run records every URL as success with the worker's values and sends exactly the contract's POST", async () => {
  const { dir, urls, db } = await setup();
  const worker = startFakeWorker({ holdUntilInFlight: 5 });
  try {
    const run = await runCli(ingestArgs(dir, worker.url, ["--concurrency", "5"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 0, run.stderr);
    const rows = rowsByUrl(db);
    assert.equal(rows.size, URL_COUNT);
    for (const url of urls) {
      const row = rows.get(url)!;
      const expected = successBody(url, "archive/ds-1/");
      assert.equal(row.status, "success");
      assert.equal(row.dataset_id, "ds-1");
      assert.equal(row.http_status, 200);
      assert.equal(row.etag, expected.etag);
      assert.equal(row.error, null);
      assert.equal(row.multipart_part_size, 5242880);
      assert.equal(row.multipart_number_parts, 1);
      assert.match(row.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const posts = worker.requests.filter((r) => r.method === "POST");
    assert.deepEqual(posts.map((p) => p.downloadUrl).sort(), [...urls].sort());
    for (const post of posts) {
      assert.equal(post.headers.get("Authorization"), `Bearer ${worker.token}`);
      assert.equal(post.headers.get("Content-Type"), "application/json");
      assert.deepEqual(JSON.parse(post.body), {
        download_url: post.downloadUrl,
        user_agent: "Data for Canada - ds-1",
        key_prefix: "archive/ds-1/",
      });
    }
  } finally {
    await worker.close();
  }
});

Deno.test("requests in flight reach --concurrency and never exceed it", async () => {
  const { dir } = await setup();
  const worker = startFakeWorker({ holdUntilInFlight: 7 });
  try {
    const run = await runCli(ingestArgs(dir, worker.url, ["--concurrency", "7"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 0, run.stderr);
    const postsInFlight = worker.requests.filter((r) => r.method === "POST")
      .map((r) => r.inFlightOnArrival);
    assert.equal(Math.max(...postsInFlight), 7);
    assert.equal(worker.maxInFlight <= 7, true, `saw ${worker.maxInFlight} in flight`);
  } finally {
    await worker.close();
  }
});

Deno.test("checkpoints upload the manifest after every 100th success and at the end", async () => {
  const { dir } = await setup();
  // One at a time, 12 ms each: the 100th and 200th successes come at least 1.2 s and 2.4 s in,
  // so checkpoints spaced by their 1 s minimum are not folded into the final one.
  const worker = startFakeWorker({ script: () => ({ delayMs: 12 }) });
  try {
    const run = await runCli(ingestArgs(dir, worker.url, ["--concurrency", "1"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 0, run.stderr);
    const uploads = worker.uploads();
    assert.equal(uploads.length, 3, "checkpoints at 100 and 200, then the final one");
    for (const upload of uploads) {
      assert.equal(upload.headers.get("X-S3-Key"), "archive/ds-1/manifest.parquet");
      assert.equal(upload.headers.get("Content-Type"), "application/vnd.apache.parquet");
      assert.equal(upload.body.startsWith("PAR1"), true);
    }
    const local = await Deno.readFile(`${dir}/manifest.parquet`);
    assert.equal(new TextDecoder().decode(local.subarray(0, 4)), "PAR1");
  } finally {
    await worker.close();
  }
});

Deno.test("a re-run sends nothing; --no-resume and --force-refresh send every URL again", async () => {
  const { dir } = await setup(30);
  const worker = startFakeWorker();
  const env = { D4C_INGESTOR_AUTH_TOKEN: worker.token };
  try {
    assert.equal((await runCli(ingestArgs(dir, worker.url), { env })).code, 0);
    assert.equal(worker.posts().length, 30);
    const again = await runCli(ingestArgs(dir, worker.url), { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(worker.posts().length, 30);
    assert.match(again.stdout, /^nothing to do: all 30 listed URL\(s\) are already archived/);
    assert.equal((await runCli(ingestArgs(dir, worker.url, ["--no-resume"]), { env })).code, 0);
    assert.equal(worker.posts().length, 60);
    assert.equal((await runCli(ingestArgs(dir, worker.url, ["--force-refresh"]), { env })).code, 0);
    assert.equal(worker.posts().length, 90);
  } finally {
    await worker.close();
  }
});

Deno.test("a failing URL is retried --max-retries times and its row records the last attempt", async () => {
  const { dir, urls, db } = await setup(10);
  const alwaysFails = urls[3];
  const healsOnThird = urls[5];
  const worker = startFakeWorker({
    script: (url, attempt) => {
      if (url === alwaysFails) {
        return { status: 503, body: { error: `overloaded (attempt ${attempt})` } };
      }
      if (url === healsOnThird && attempt < 3) return { status: 500, body: { error: "boom" } };
      return undefined;
    },
  });
  try {
    const run = await runCli(ingestArgs(dir, worker.url, ["--max-retries", "2"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 1, "a URL failed");
    const posts = worker.posts();
    assert.equal(posts.filter((u) => u === alwaysFails).length, 3);
    assert.equal(posts.filter((u) => u === healsOnThird).length, 3);
    const rows = rowsByUrl(db);
    assert.equal(rows.get(alwaysFails)!.status, "failed");
    assert.equal(rows.get(alwaysFails)!.http_status, 503);
    assert.equal(rows.get(alwaysFails)!.error, "overloaded (attempt 3)");
    assert.equal(rows.get(healsOnThird)!.status, "success");
  } finally {
    await worker.close();
  }
});

Deno.test("--max-retries 0 makes a single attempt", async () => {
  const { dir, urls } = await setup(3);
  const worker = startFakeWorker({ script: () => ({ status: 503, body: { error: "down" } }) });
  try {
    const run = await runCli(ingestArgs(dir, worker.url, ["--max-retries", "0"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 1);
    assert.deepEqual(worker.posts().sort(), [...urls].sort());
  } finally {
    await worker.close();
  }
});

Deno.test("--auth-token overrides the environment variable", async () => {
  const { dir } = await setup(2);
  const worker = startFakeWorker();
  try {
    const run = await runCli(
      ingestArgs(dir, worker.url, ["--auth-token", worker.token]),
      { env: { D4C_INGESTOR_AUTH_TOKEN: "not-the-token" } },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(worker.posts().length, 2);
  } finally {
    await worker.close();
  }
});

Deno.test("a transport failure records the client's own times, so started_at is never empty", async () => {
  const { dir, urls, db } = await setup(2);
  const worker = startFakeWorker({
    script: (url) => url === urls[0] ? { breakBody: true } : undefined,
  });
  try {
    const run = await runCli(ingestArgs(dir, worker.url, ["--max-retries", "0"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 1);
    const row = rowsByUrl(db).get(urls[0])!;
    assert.equal(row.status, "failed");
    assert.match(row.started_at, /^\d{4}-\d\d-\d\dT/);
    assert.match(row.finished_at!, /^\d{4}-\d\d-\d\dT/);
    assert.match(row.error!, /worker request failed|HTTP 200/);
  } finally {
    await worker.close();
  }
});
