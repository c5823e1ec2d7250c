import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { exists, fixture, lines, rowsByUrl, snapshot } from "./support/fixture.ts";

const u = (path: string) => `https://data.example.org/${path}`;
/** Two groups (x.zip by three URLs, y.zip by two) and one URL alone. */
const LIST = [u("a/x.zip"), u("b/x.zip"), u("d/y.zip"), u("c/x.zip"), u("e/y.zip"), u("f/z.zip")];
const PREFIX = ["--key-prefix", "archive/set/"];

Deno.test("by default, URLs sharing an object key refuse the run before any POST", async () => {
  const worker = startFakeWorker();
  await using files = await fixture(LIST);
  try {
    const result = await runCli(files.args(worker, PREFIX));
    assert.equal(result.code, 2);
    assert.equal(lines(result.stderr).length, 1, result.stderr);
    assert.match(result.stderr, /^d4c-http-ingestor: 2 object key\(s\) would be written by more/);
    assert.ok(
      result.stderr.includes(
        `archive/set/x.zip <- ${u("a/x.zip")}, ${u("b/x.zip")}, ${u("c/x.zip")}`,
      ),
      result.stderr,
    );
    assert.ok(result.stderr.includes(`archive/set/y.zip <- ${u("d/y.zip")}, ${u("e/y.zip")}`));
    assert.match(result.stderr, /--on-key-collision=skip/);
    assert.deepEqual(worker.posts(), []);
    assert.equal(await exists(files.db), false);
  } finally {
    await worker.close();
  }
});

Deno.test("the refusal names the first groups only, and sizes the big ones", async () => {
  const worker = startFakeWorker();
  const list = Array.from({ length: 8 }, (_, g) => [1, 2, 3, 4].map((i) => u(`${i}/g${g}.zip`)))
    .flat();
  await using files = await fixture(list);
  try {
    const result = await runCli(files.args(worker));
    assert.equal(result.code, 2);
    assert.equal(lines(result.stderr).length, 1);
    assert.match(result.stderr, /^d4c-http-ingestor: 8 object key\(s\)/);
    assert.equal(result.stderr.match(/ <- /g)?.length, 5, "five groups shown");
    assert.match(result.stderr, /g0\.zip <- \S+, \S+, \S+, … \(4 URLs\)/);
    assert.deepEqual(worker.posts(), []);
  } finally {
    await worker.close();
  }
});

Deno.test("--on-key-collision=skip sends the first of each group, skips the rest", async () => {
  const worker = startFakeWorker();
  await using files = await fixture(LIST);
  try {
    const result = await runCli(files.args(worker, [...PREFIX, "--on-key-collision=skip"]));
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(worker.posts().toSorted(), [u("a/x.zip"), u("d/y.zip"), u("f/z.zip")]);
    const rows = rowsByUrl(files.db);
    for (
      const [skipped, owner] of [["b/x.zip", "a/x.zip"], ["c/x.zip", "a/x.zip"], [
        "e/y.zip",
        "d/y.zip",
      ]]
    ) {
      const row = rows.get(u(skipped))!;
      assert.equal(row.status, "skipped");
      assert.ok(row.error?.includes(u(owner)), `${skipped}: ${row.error}`);
    }
    assert.match(result.stdout, /this run: 3 success, 0 failed, 3 skipped/);
  } finally {
    await worker.close();
  }
});

Deno.test("--on-key-collision=allow sends every URL, as the Python tool did", async () => {
  const worker = startFakeWorker();
  await using files = await fixture(LIST);
  try {
    const result = await runCli(files.args(worker, ["--on-key-collision", "allow"]));
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(worker.posts().toSorted(), LIST.toSorted());
  } finally {
    await worker.close();
  }
});

Deno.test("a URL already archived owns its key: the newcomer is the one refused or skipped", async () => {
  const worker = startFakeWorker();
  await using files = await fixture([u("old/x.zip")]);
  try {
    assert.equal((await runCli(files.args(worker))).code, 0);
    await Deno.writeTextFile(files.urlsPath, [u("new/x.zip"), u("new/w.zip")].join("\n"));

    const before = await snapshot(files.dir);
    const refused = await runCli(files.args(worker));
    assert.equal(refused.code, 2);
    assert.ok(refused.stderr.includes(`x.zip <- ${u("old/x.zip")}, ${u("new/x.zip")}`));
    assert.deepEqual(await snapshot(files.dir), before, "the database is untouched");

    const skipped = await runCli(files.args(worker, ["--on-key-collision=skip"]));
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.deepEqual(worker.posts(), [u("old/x.zip"), u("new/w.zip")]);
    const rows = rowsByUrl(files.db);
    assert.equal(rows.get(u("old/x.zip"))?.status, "success");
    assert.equal(rows.get(u("new/x.zip"))?.status, "skipped");
    assert.ok(rows.get(u("new/x.zip"))?.error?.includes(u("old/x.zip")));
  } finally {
    await worker.close();
  }
});
