import assert from "node:assert/strict";
import { type FakeWorker, startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import type { RunSummary } from "../lib/summary.ts";

const GOOD = Array.from({ length: 4 }, (_, i) => `https://example.org/ok/good-${i}.zip`);
const BAD = ["https://example.org/bad/bad-1.zip", "https://example.org/bad/bad-2.zip"];

function brokenSource(downloadUrl: string) {
  return downloadUrl.includes("/bad/")
    ? { status: 502, body: { error: "Source returned HTTP 404" } }
    : undefined;
}

async function withRun(
  test: (dir: string, worker: FakeWorker, args: string[]) => Promise<void>,
  options: { delayMs?: number } = {},
): Promise<void> {
  const worker = startFakeWorker({
    script: (url) =>
      brokenSource(url) ?? (options.delayMs ? { delayMs: options.delayMs } : undefined),
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/urls.txt`, [...GOOD, ...BAD].join("\n") + "\n");
    await test(dir, worker, [
      "--urls",
      `${dir}/urls.txt`,
      "--dataset-id",
      "out",
      "--db",
      `${dir}/out.sqlite`,
      "--out",
      `${dir}/out`,
      "--key-prefix",
      "p/",
      "--worker-url",
      worker.url,
      "--auth-token",
      worker.token,
    ]);
  } finally {
    await worker.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("--json prints the summary as one JSON object on stdout", async () => {
  await withRun(async (dir, _worker, args) => {
    const result = await runCli([...args, "--json"]);
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1, result.stdout);
    const summary: RunSummary = JSON.parse(lines[0]);
    assert.equal(summary.dataset_id, "out");
    assert.equal(summary.end, "completed");
    assert.equal(summary.exit_code, 1);
    assert.equal(summary.listed, 6);
    assert.equal(summary.to_send, 6);
    assert.equal(summary.success, 4);
    assert.equal(summary.failed, 2);
    assert.equal(summary.skipped, 0);
    assert.equal(summary.not_attempted, 0);
    // The fake worker reports 1000 + the URL's length as each object's size.
    assert.equal(summary.bytes_archived, GOOD.reduce((n, url) => n + 1000 + url.length, 0));
    assert.deepEqual(summary.top_errors, [{ error: "Source returned HTTP 404", count: 2 }]);
    assert.deepEqual(summary.parquet, { path: `${dir}/out.parquet`, rows: 6, error: null });
    assert.deepEqual(summary.upload, { key: "p/out.parquet", ok: true, attempts: 1, error: null });
    assert.ok(summary.wall_seconds > 0);
    assert.ok(summary.mean_rate_per_second > 0);
  });
});

Deno.test("the summary names counts, bytes, the top errors and the manifest", async () => {
  await withRun(async (dir, _worker, args) => {
    const result = await runCli([...args, "--quiet"]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, "", "--quiet: nothing but errors on stderr");
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines[0], "listed 6 URL(s) (0 duplicate line(s) ignored), 0 already archived");
    assert.match(lines[1], /^this run: 4 success, 2 failed, 0 skipped, 0 not attempted in \S+$/);
    assert.match(lines[2], /^archived 4\.13 kB, [\d.]+ URL\/s$/);
    assert.deepEqual(lines.slice(3), [
      "top errors:",
      "  2  Source returned HTTP 404",
      `parquet: ${dir}/out.parquet (6 rows)`,
      "parquet upload: ok (p/out.parquet)",
    ]);
  });
});

Deno.test("not a terminal: progress comes as plain lines, never as a redrawn bar", async () => {
  await withRun(async (_dir, _worker, args) => {
    const result = await runCli([...args, "--concurrency", "1", "--log-interval", "0.05"]);
    assert.equal(result.code, 1);
    assert.ok(!result.stderr.includes("\r") && !result.stderr.includes("\x1b"), result.stderr);
    // How many lines appear depends on timing; each one that does has this form.
    for (const line of result.stderr.split("\n").filter((l) => l !== "")) {
      assert.match(
        line,
        /^progress: \d\/6 \(\d+\.\d%\), \d ok, \d failed, \d retry waiting, [01] in flight, \S+ URL\/s, ETA \S+( \S+)?, \S+ k?B archived, last checkpoint (none yet|\S+ ago), elapsed \S+$/,
      );
    }
  }, { delayMs: 40 });
});
