import assert from "node:assert/strict";
import { type FakeWorker, startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { entryOfLine } from "../lib/url_list.ts";
import type { StatusReport } from "../lib/status_command.ts";

const GOOD = ["https://example.org/a/good-1.zip", "https://example.org/a/good-2.zip"];
const BAD = ["https://example.org/a/bad-1.zip", "https://example.org/a/bad-2.zip"];

/** A worker where each `bad-` URL fails once, for good, with the source's 404. */
function startWorker(): FakeWorker {
  return startFakeWorker({
    script: (url, attempt) =>
      url.includes("/bad-") && attempt === 1
        ? { status: 502, body: { error: "Source returned HTTP 404" } }
        : undefined,
  });
}

function ingestArgs(dir: string, worker: FakeWorker, urls: string, dataset: string): string[] {
  return [
    "--urls",
    urls,
    "--dataset-id",
    dataset,
    "--db",
    `${dir}/db.sqlite`,
    "--out",
    `${dir}/out`,
    "--worker-url",
    worker.url,
    "--auth-token",
    worker.token,
    "--quiet",
  ];
}

/** A database holding dataset `a` (2 success, 2 failed, 1 skipped) and `b` (1 success). */
async function withDatabase(test: (dir: string, worker: FakeWorker) => Promise<void>) {
  const worker = startWorker();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, [...GOOD, ...BAD, "ftp://example.org/x"].join("\n"));
    await Deno.writeTextFile(`${dir}/b.txt`, "https://example.org/b/other.zip\n");
    const a = await runCli(ingestArgs(dir, worker, `${dir}/a.txt`, "a"));
    assert.equal(a.code, 1, a.stderr);
    const b = await runCli(ingestArgs(dir, worker, `${dir}/b.txt`, "b"));
    assert.equal(b.code, 0, b.stderr);
    await test(dir, worker);
  } finally {
    await worker.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("status: counts by dataset and status, last activity, top errors", async () => {
  await withDatabase(async (dir) => {
    const text = await runCli(["status", "--db", `${dir}/db.sqlite`]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^dataset\s+success\s+failed\s+skipped\s+total\s+last activity$/);
    assert.match(lines[1], /^a\s+2\s+2\s+1\s+5\s+\d{4}-\d\d-\d\dT\S+$/);
    assert.match(lines[2], /^b\s+1\s+0\s+0\s+1\s+\d{4}-\d\d-\d\dT\S+$/);
    assert.deepEqual(lines.slice(3), [
      "top errors of failed URLs:",
      "  2  Source returned HTTP 404",
    ]);

    const json = await runCli([
      "status",
      "--db",
      `${dir}/db.sqlite`,
      "--json",
      "--dataset-id",
      "b",
    ]);
    assert.equal(json.code, 0, json.stderr);
    const report: StatusReport = JSON.parse(json.stdout);
    assert.equal(report.datasets.length, 1);
    assert.equal(report.datasets[0].dataset_id, "b");
    assert.deepEqual(report.datasets[0].counts, { success: 1 });
    assert.equal(report.datasets[0].total, 1);
    assert.deepEqual(report.top_errors, []);
  });
});

Deno.test("status --failed | … --urls - sends exactly the failed URLs again", async () => {
  await withDatabase(async (dir, worker) => {
    const failed = await runCli(["status", "--db", `${dir}/db.sqlite`, "--failed"]);
    assert.equal(failed.code, 0, failed.stderr);
    assert.equal(
      failed.stdout,
      BAD.map((url) => `${url}  # Source returned HTTP 404\n`).join(""),
    );
    const postsBefore = worker.posts().length;
    const retry = await runCli(ingestArgs(dir, worker, "-", "a"), { stdin: failed.stdout });
    assert.equal(retry.code, 0, retry.stderr);
    assert.deepEqual(worker.posts().slice(postsBefore), BAD);
    const after = await runCli(["status", "--db", `${dir}/db.sqlite`, "--failed"]);
    assert.equal(after.stdout, "");
  });
});

Deno.test("status on a missing database is one line and exit 2, and creates nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await runCli(["status", "--db", `${dir}/none.sqlite`]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, `d4c-http-ingestor: --db ${dir}/none.sqlite: no such file\n`);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    const noDb = await runCli(["status"]);
    assert.equal(noDb.code, 2);
    assert.match(noDb.stderr, /required option '--db <file>' not specified/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a URL list line may end with a # comment after whitespace", () => {
  assert.equal(
    entryOfLine("https://e.org/a.zip  # Source returned HTTP 404"),
    "https://e.org/a.zip",
  );
  assert.equal(entryOfLine("https://e.org/a.zip\t#x\r"), "https://e.org/a.zip");
  assert.equal(entryOfLine("https://e.org/a.zip#part"), "https://e.org/a.zip#part");
  assert.equal(entryOfLine("  # only a comment"), null);
  assert.equal(entryOfLine("   "), null);
});
