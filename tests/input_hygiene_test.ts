import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { runCli } from "./support/cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import {
  exists,
  type Fixture,
  fixture,
  lines,
  rowsByUrl,
  snapshot,
  urlList,
} from "./support/fixture.ts";
import { DOWNLOADS_DDL } from "../lib/store.ts";

/** Asserts a refused run: exit 2, one line on stderr (no stack trace), nothing on stdout. */
function assertRefused(result: { code: number; stdout: string; stderr: string }, why: RegExp) {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(lines(result.stderr).length, 1, `one line: ${result.stderr}`);
  assert.match(result.stderr, /^d4c-http-ingestor: /);
  assert.match(result.stderr, why);
  assert.doesNotMatch(result.stderr, /\bat .*\.ts:\d+/);
  assert.equal(result.stdout, "");
}

/** Runs with `files` and a worker; returns the result with the fake worker's POSTs. */
async function run(files: Fixture, extra: string[] = [], options: { stdin?: string } = {}) {
  const worker = startFakeWorker();
  try {
    const result = await runCli(files.args(worker, extra), options);
    return { ...result, posts: worker.posts(), worker };
  } finally {
    await worker.close();
  }
}

/** A database as the Python original leaves it: its DDL, rollback journal, one row. */
function pythonDatabase(path: string): void {
  const db = new DatabaseSync(path);
  db.exec(DOWNLOADS_DDL);
  db.exec(`INSERT INTO downloads (url, dataset_id, status, started_at)
    VALUES ('https://data.example.org/old/old.zip', 'test-data', 'success', '2025-01-01T00:00:00+00:00')`);
  db.close();
}

Deno.test("duplicate URLs are sent once and counted", async () => {
  const url = "https://data.example.org/a/one.zip";
  await using files = await fixture(
    `${url}\n${url}\n  ${url}  \r\nhttps://data.example.org/b/two.zip\n${url}\n`,
  );
  const result = await run(files);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.posts.toSorted(), [url, "https://data.example.org/b/two.zip"]);
  assert.match(result.stdout, /listed 2 URL\(s\) \(3 duplicate line\(s\) ignored\)/);
});

Deno.test("lines that are not absolute http(s) URLs are recorded skipped, never sent", async () => {
  const bad = {
    "ftp://data.example.org/a.zip": /unsupported scheme "ftp"/,
    "file:///etc/passwd": /unsupported scheme "file"/,
    "javascript:alert(1)": /unsupported scheme "javascript"/,
    "/relative/path.zip": /not an absolute URL/,
    "data.example.org/no-scheme.zip": /not an absolute URL/,
    "http://": /not an absolute URL/,
  };
  const good = urlList(2);
  await using files = await fixture([...good, ...Object.keys(bad), "# a comment", ""]);
  const result = await run(files);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.posts.toSorted(), good.toSorted());
  const rows = rowsByUrl(files.db);
  for (const [line, reason] of Object.entries(bad)) {
    const row = rows.get(line);
    assert.ok(row, `${line} recorded`);
    assert.equal(row.status, "skipped");
    assert.equal(row.http_status, null);
    assert.match(row.error ?? "", reason);
  }
  assert.match(result.stdout, /this run: 2 success, 0 failed, 6 skipped/);
});

Deno.test("a UTF-8 BOM and CRLF line ends are accepted", async () => {
  await using files = await fixture(
    "\uFEFFhttps://data.example.org/a/1.zip\r\nhttps://data.example.org/a/2.zip\r\n",
  );
  const result = await run(files);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.posts.toSorted(), [
    "https://data.example.org/a/1.zip",
    "https://data.example.org/a/2.zip",
  ]);
  assert.deepEqual([...rowsByUrl(files.db).keys()].toSorted(), result.posts.toSorted());
});

Deno.test("--urls - reads the list from stdin", async () => {
  await using files = await fixture([]);
  const urls = urlList(3);
  const result = await run(files, ["--urls", "-"], { stdin: urls.join("\n") });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.posts.toSorted(), urls.toSorted());
});

Deno.test("a missing URL file: one line, exit 2, nothing created", async () => {
  await using files = await fixture([]);
  const result = await run(files, ["--urls", join(files.dir, "nope.txt")]);
  assertRefused(result, /--urls .*nope\.txt: no such file/);
  assert.equal(result.worker.requests.length, 0);
  assert.equal(await exists(files.db), false);
});

Deno.test("a directory as the URL file: one line, exit 2, nothing created", async () => {
  await using files = await fixture([]);
  const result = await run(files, ["--urls", files.dir]);
  assertRefused(result, /is a directory, not a file of URLs/);
  assert.equal(await exists(files.db), false);
});

Deno.test("an unreadable URL file: one line, exit 2", {
  ignore: Deno.build.os === "windows" || Deno.uid() === 0,
}, async () => {
  await using files = await fixture(urlList(1));
  await Deno.chmod(files.urlsPath, 0o000);
  const result = await run(files);
  assertRefused(result, /permission denied/);
});

for (
  const [name, bytes] of [
    ["NUL bytes", new Uint8Array([0x68, 0x74, 0x74, 0x70, 0, 0, 0, 1, 2, 3])],
    ["invalid UTF-8", new TextEncoder().encode("https://a.example/x.zip\n").with(3, 0xff)],
  ] as const
) {
  Deno.test(`a binary URL file (${name}): one line, exit 2, nothing sent or created`, async () => {
    await using files = await fixture(bytes);
    const result = await run(files);
    assertRefused(result, /is not a text file of URLs \(binary content\)/);
    assert.deepEqual(result.posts, []);
    assert.equal(await exists(files.db), false);
  });
}

Deno.test("a binary URL file leaves an existing database untouched", async () => {
  await using files = await fixture(new Uint8Array([1, 2, 0, 3]));
  pythonDatabase(files.db);
  const before = await snapshot(files.dir);
  const result = await run(files);
  assertRefused(result, /binary content/);
  assert.deepEqual(await snapshot(files.dir), before);
});

Deno.test("a database inside a missing directory: one line, exit 2, nothing created", async () => {
  await using files = await fixture(urlList(1));
  const db = join(files.dir, "missing", "state.sqlite");
  const result = await run(files, ["--db", db]);
  assertRefused(result, /--db .*missing\/state\.sqlite: cannot open or create it/);
  assert.equal(await exists(join(files.dir, "missing")), false);
  assert.deepEqual(result.worker.requests, []);
});

Deno.test("a directory as the database: one line, exit 2", async () => {
  await using files = await fixture(urlList(1));
  const before = await snapshot(files.dir);
  const result = await run(files, ["--db", files.dir]);
  assertRefused(result, /--db /);
  assert.deepEqual(await snapshot(files.dir), before);
});

for (
  const [name, bytes] of [
    ["text", new TextEncoder().encode("url,status\nhttps://a.example/x.zip,success\n")],
    ["random bytes", crypto.getRandomValues(new Uint8Array(8192))],
  ] as const
) {
  Deno.test(`a --db that is not SQLite (${name}): one line, exit 2, bytes unchanged`, async () => {
    await using files = await fixture(urlList(1));
    await Deno.writeFile(files.db, bytes);
    const before = await snapshot(files.dir);
    const result = await run(files);
    assertRefused(result, /is not a SQLite database/);
    assert.deepEqual(await snapshot(files.dir), before, "no byte, mtime or file changed");
    assert.deepEqual(result.worker.requests, []);
  });
}

for (
  const [name, ddl, why] of [
    [
      "missing columns",
      "CREATE TABLE downloads (id INTEGER PRIMARY KEY, url TEXT, status TEXT, started_at TEXT)",
      /has a downloads table of another shape \(it lacks column\(s\) dataset_id, http_status/,
    ],
    [
      "not keyed by url",
      DOWNLOADS_DDL.replace("url TEXT PRIMARY KEY", "url TEXT")
        .replace("dataset_id TEXT NOT NULL", "dataset_id TEXT"),
      /has a downloads table of another shape \(it is not keyed by url\)/,
    ],
  ] as const
) {
  Deno.test(`a downloads table with ${name}: one line, exit 2, file unchanged`, async () => {
    await using files = await fixture(urlList(1));
    const db = new DatabaseSync(files.db);
    db.exec(ddl);
    db.exec(`INSERT INTO downloads (url, status, started_at)
      VALUES ('https://a.example/x.zip', 'done', '2025-01-01')`);
    db.close();
    const before = await snapshot(files.dir);
    const result = await run(files);
    assertRefused(result, why);
    assert.deepEqual(await snapshot(files.dir), before);
    assert.deepEqual(result.worker.requests, []);
  });
}

Deno.test("a database written by the Python tool resumes as it is", async () => {
  await using files = await fixture(["https://data.example.org/old/old.zip", ...urlList(2)]);
  pythonDatabase(files.db);
  const result = await run(files);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.posts.toSorted(), urlList(2).toSorted());
  assert.match(result.stdout, /1 already archived/);
});
