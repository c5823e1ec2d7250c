import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parquetMetadata } from "hyparquet";
import { runCli } from "./support/cli.ts";
import { startFakeWorker, successBody } from "./support/fake_worker.ts";
import { encodeManifest, expectedManifest, readManifest } from "./support/manifest.ts";
import { emptyColumns, manifestRow, pushRow } from "../lib/parquet.ts";

function urls(n: number, prefix = "https://tiles.example.org/2022"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}/tile_${String(i).padStart(6, "0")}.tif`);
}

async function tempDir(): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir();
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

function cliArgs(dir: string, workerUrl: string, extra: string[] = []): string[] {
  return [
    "--urls",
    join(dir, "urls.txt"),
    "--dataset-id",
    "ds-b",
    "--worker-url",
    workerUrl,
    "--db",
    join(dir, "state.sqlite"),
    "--out",
    join(dir, "manifest"),
    "--log-interval",
    "60",
    ...extra,
  ];
}

/**
 * A loopback worker that answers POSTs after `delayMs` and keeps every uploaded manifest, noting
 * how many uploads were ever under way at once.
 */
function startRecordingWorker(delayMs: number) {
  const uploads: ArrayBuffer[] = [];
  const state = { putsInFlight: 0, maxPutsInFlight: 0, posts: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.headers.get("Authorization") !== "Bearer test-token") {
      return new Response("Unauthorized", { status: 401 });
    }
    if (req.method === "PUT") {
      if (!req.headers.get("X-S3-Key")) {
        return Response.json({ error: "'X-S3-Key' header is required." }, { status: 400 });
      }
      state.putsInFlight++;
      state.maxPutsInFlight = Math.max(state.maxPutsInFlight, state.putsInFlight);
      try {
        const bytes = await req.arrayBuffer();
        uploads.push(bytes);
        return Response.json({
          ...successBody("https://x/manifest.parquet", ""),
          size_bytes: bytes.byteLength,
        });
      } finally {
        state.putsInFlight--;
      }
    }
    const { download_url, key_prefix } = await req.json();
    state.posts++;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return Response.json(successBody(download_url, key_prefix));
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    uploads,
    state,
    close: () => server.shutdown(),
  };
}

Deno.test("after many folded checkpoints the manifest equals the table; uploads never overlap", async () => {
  await using tmp = await tempDir();
  const worker = startRecordingWorker(8);
  try {
    await Deno.writeTextFile(join(tmp.dir, "urls.txt"), urls(3000).join("\n"));
    const run = await runCli(cliArgs(tmp.dir, worker.url, ["--concurrency", "8"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: "test-token" },
    });
    assert.equal(run.code, 0, run.stderr);
    const manifest = await readManifest(join(tmp.dir, "manifest.parquet"));
    assert.equal(manifest.length, 3000);
    assert.deepEqual(manifest, expectedManifest(join(tmp.dir, "state.sqlite")));
    // 30 checkpoints fell due; fewer ran, one at a time, each seeing at least the rows before.
    assert.ok(
      worker.uploads.length >= 2 && worker.uploads.length < 30,
      `${worker.uploads.length} ${run.stderr} ${run.stdout}`,
    );
    assert.equal(worker.state.maxPutsInFlight, 1);
    const rows = worker.uploads.map((bytes) => Number(parquetMetadata(bytes).num_rows));
    assert.deepEqual(rows, rows.toSorted((a, b) => a - b));
    assert.equal(rows.at(-1), 3000);
  } finally {
    await worker.close();
  }
});

Deno.test("every result of a 100,000-URL run is committed and in the manifest", async () => {
  await using tmp = await tempDir();
  const worker = startFakeWorker();
  try {
    await Deno.writeTextFile(join(tmp.dir, "urls.txt"), urls(100_000).join("\n"));
    const run = await runCli(cliArgs(tmp.dir, worker.url, ["--concurrency", "64"]), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(worker.posts().length, 100_000);
    const db = new DatabaseSync(join(tmp.dir, "state.sqlite"), { readOnly: true });
    const { n } = db.prepare("SELECT count(*) AS n FROM downloads WHERE status = 'success'")
      .get() as { n: number };
    db.close();
    assert.equal(n, 100_000);
    const manifest = await readManifest(join(tmp.dir, "manifest.parquet"));
    assert.equal(new Set(manifest.map((r) => r.url)).size, 100_000);
    assert.ok(manifest.every((r) => r.status === "success"));
  } finally {
    await worker.close();
  }
});

Deno.test("a re-run with everything archived says there is nothing to do", async () => {
  await using tmp = await tempDir();
  const worker = startFakeWorker();
  try {
    await Deno.writeTextFile(join(tmp.dir, "urls.txt"), urls(20).join("\n"));
    const env = { D4C_INGESTOR_AUTH_TOKEN: worker.token };
    assert.equal((await runCli(cliArgs(tmp.dir, worker.url), { env })).code, 0);
    const before = await Deno.readFile(join(tmp.dir, "manifest.parquet"));
    const again = await runCli(cliArgs(tmp.dir, worker.url), { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to do/);
    assert.equal(worker.posts().length, 20);
    assert.deepEqual(await Deno.readFile(join(tmp.dir, "manifest.parquet")), before);
  } finally {
    await worker.close();
  }
});

Deno.test("rows of another dataset already in the manifest are kept; this database wins", async () => {
  await using tmp = await tempDir();
  const worker = startFakeWorker();
  try {
    const theirs = Array.from(
      { length: 5 },
      (_, i) => `https://other.example.org/a/other_${i}.tif`,
    );
    const ours = [...urls(10), theirs[0]];
    const other = emptyColumns();
    for (const url of theirs) {
      pushRow(other, {
        ...manifestRow({
          url,
          dataset_id: "ds-a",
          status: "failed",
          http_status: 502,
          etag: null,
          error: "Source returned HTTP 503",
          started_at: "2026-03-12T21:00:00Z",
          finished_at: null,
          multipart_part_size: null,
          multipart_number_parts: null,
        }),
        started_at: 1773349200123456n,
      });
    }
    await Deno.writeFile(join(tmp.dir, "manifest.parquet"), encodeManifest(other));
    await Deno.writeTextFile(join(tmp.dir, "urls.txt"), ours.join("\n"));
    const run = await runCli(cliArgs(tmp.dir, worker.url), {
      env: { D4C_INGESTOR_AUTH_TOKEN: worker.token },
    });
    assert.equal(run.code, 0, run.stderr);
    const manifest = await readManifest(join(tmp.dir, "manifest.parquet"));
    const kept = manifest.filter((r) => r.dataset_id === "ds-a");
    assert.deepEqual(kept.map((r) => r.url), theirs.slice(1));
    assert.ok(kept.every((r) => r.started_at === 1773349200123456n && r.finished_at === null));
    assert.deepEqual(
      manifest.filter((r) => r.dataset_id === "ds-b"),
      expectedManifest(join(tmp.dir, "state.sqlite")),
    );
    assert.equal(manifest.find((r) => r.url === theirs[0])?.status, "success");
  } finally {
    await worker.close();
  }
});

Deno.test("an unreadable manifest stops the run before anything is sent, unless replaced", async () => {
  await using tmp = await tempDir();
  const worker = startFakeWorker();
  try {
    const garbage = new TextEncoder().encode("this is not parquet\n");
    await Deno.writeFile(join(tmp.dir, "manifest.parquet"), garbage);
    // An invalid line would be recorded as skipped: not before the manifest is judged.
    await Deno.writeTextFile(join(tmp.dir, "urls.txt"), [...urls(5), "not a url"].join("\n"));
    const env = { D4C_INGESTOR_AUTH_TOKEN: worker.token };
    const refused = await runCli(cliArgs(tmp.dir, worker.url), { env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /manifest\.parquet.*--replace-parquet/);
    assert.equal(refused.stderr.trim().split("\n").length, 1);
    assert.equal(worker.posts().length, 0);
    assert.deepEqual(await Deno.readFile(join(tmp.dir, "manifest.parquet")), garbage);
    assert.deepEqual(
      [...Deno.readDirSync(tmp.dir)].map((e) => e.name).sort(),
      ["manifest.parquet", "urls.txt"],
      "the database the run created is gone",
    );

    const replaced = await runCli(cliArgs(tmp.dir, worker.url, ["--replace-parquet"]), { env });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.deepEqual(
      await readManifest(join(tmp.dir, "manifest.parquet")),
      expectedManifest(join(tmp.dir, "state.sqlite")),
    );
  } finally {
    await worker.close();
  }
});
