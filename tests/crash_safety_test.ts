import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { startCli } from "./support/live_cli.ts";
import { type FakeWorker, startFakeWorker } from "./support/fake_worker.ts";
import {
  exists,
  type Fixture,
  fixture,
  integrityCheck,
  readManifest,
  readRows,
  urlList,
} from "./support/fixture.ts";

const URLS = urlList(300);
const FLAGS = ["--concurrency", "8"];

/**
 * Runs the CLI until `moment` resolves, kills it with SIGKILL, checks what it left, then resumes
 * against a fresh fake worker and checks the list is complete with nothing archived twice.
 */
async function killAndResume(files: Fixture, worker: FakeWorker, moment: Promise<void>) {
  const cli = startCli(files.args(worker, FLAGS));
  await moment;
  cli.kill("SIGKILL");
  const killed = await cli.result;
  assert.equal(killed.code, 137, "died of SIGKILL");

  assert.equal(integrityCheck(files.db), "ok");
  const rows = readRows(files.db);
  const archived = new Set(rows.filter((row) => row.status === "success").map((row) => row.url));
  const sent = new Set(worker.posts());
  assert.equal(sent.size, worker.posts().length, "no URL sent twice");
  for (const url of archived) assert.ok(sent.has(url), `${url} recorded but never sent`);
  const manifest = `${files.out}.parquet`;
  if (await exists(manifest)) {
    const { rows: read, numRows } = await readManifest(manifest);
    assert.equal(read.length, numRows, "the manifest reads completely");
    assert.ok(numRows <= rows.length);
  }

  const fresh = startFakeWorker({ token: worker.token });
  try {
    const resumed = await runCli(files.args(fresh, FLAGS));
    assert.equal(resumed.code, 0, resumed.stderr);
    const resent = fresh.posts();
    assert.equal(new Set(resent).size, resent.length, "each URL sent once by the resume");
    for (const url of resent) assert.ok(!archived.has(url), `${url} was archived, then resent`);
    assert.equal(resent.length, URLS.length - archived.size);
  } finally {
    await fresh.close();
  }

  assert.equal(integrityCheck(files.db), "ok");
  const after = readRows(files.db);
  assert.deepEqual(after.map((row) => row.url).toSorted(), URLS.toSorted());
  assert.ok(after.every((row) => row.status === "success"));
  const { numRows } = await readManifest(manifest);
  assert.equal(numRows, URLS.length);
  const leftovers = [...Deno.readDirSync(files.dir)].filter((entry) => entry.name.endsWith(".tmp"));
  assert.deepEqual(leftovers, [], "no temporary manifest is left behind");
  return archived.size;
}

for (const posts of [1, 50, 200]) {
  Deno.test(`kill -9 after ${posts} POST(s), then resume: every URL archived once`, async () => {
    const worker = startFakeWorker();
    await using files = await fixture(URLS);
    try {
      await killAndResume(files, worker, worker.whenPosts(posts));
    } finally {
      await worker.close();
    }
  });
}

Deno.test("kill -9 while the first checkpoint uploads, then resume", async () => {
  const worker = startFakeWorker({ putScript: () => ({ hang: true }) });
  await using files = await fixture(URLS);
  try {
    const archived = await killAndResume(files, worker, worker.whenUploads(1));
    assert.ok(archived >= 100, `${archived} archived before the first checkpoint`);
  } finally {
    await worker.close();
  }
});

Deno.test("a temporary manifest left by a killed run does not disturb the next", async () => {
  const worker = startFakeWorker();
  await using files = await fixture(urlList(3));
  try {
    const stray = `${files.out}.parquet.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(stray, new TextEncoder().encode("PAR1 half a file"));
    const result = await runCli(files.args(worker));
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await readManifest(`${files.out}.parquet`)).numRows, 3);
    assert.equal(await exists(stray), false, "the leftover is cleared");
  } finally {
    await worker.close();
  }
});
