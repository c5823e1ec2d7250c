import assert from "node:assert/strict";
import { CHECKPOINT_THREAD_NICENESS } from "../lib/checkpoint.ts";
import { PERMISSION_FLAGS } from "../tools/permissions.ts";
import { startCli } from "./support/live_cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { fixture, rowsByUrl, urlList } from "./support/fixture.ts";

const CONCURRENCY = 2;
const URLS = urlList(6);

/** Nice values of a process's threads: its main thread's, and every thread's. */
interface Niceness {
  main: number;
  all: number[];
}

/** The nice values of the threads of process `pid`. */
function threadNiceness(pid: number): Niceness {
  let main = NaN;
  const all = [];
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    let stat;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue; // the thread ended meanwhile
      throw error;
    }
    // Fields after the parenthesised thread name (which may hold spaces): state is field 3.
    const nice = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19 - 3]);
    if (Number(entry.name) === pid) main = nice;
    all.push(nice);
  }
  return { main, all };
}

/** Runs `URLS` with `permissions` and returns its threads' nice values while requests are held. */
async function nicenessDuringRun(permissions: readonly string[]): Promise<Niceness> {
  const worker = startFakeWorker({ gated: true });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]), {
      permissions,
    });
    await worker.whenHeld(CONCURRENCY);
    const niceness = threadNiceness(cli.pid);
    worker.openGate();
    const result = await cli.result;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(rowsByUrl(files.db).size, URLS.length);
    return niceness;
  } finally {
    await worker.close();
  }
}

const onLinux = Deno.build.os === "linux";
/** This test process's own nice value, which the CLI inherits. */
const base = onLinux ? threadNiceness(Deno.pid).main : 0;

Deno.test({
  name: "the thread that commits and checkpoints runs at a lower priority than dispatch",
  ignore: !onLinux || base >= CHECKPOINT_THREAD_NICENESS,
  fn: async () => {
    const { main, all } = await nicenessDuringRun(PERMISSION_FLAGS);
    assert.equal(main, base, "the dispatch (main) thread keeps its priority");
    // Threads the checkpoint thread starts for its file writes inherit its priority.
    assert.ok(all.includes(CHECKPOINT_THREAD_NICENESS), `a thread lowered: ${all}`);
  },
});

Deno.test({
  name: "without --allow-sys=setPriority a run works the same, every thread at one priority",
  ignore: !onLinux,
  fn: async () => {
    const { all } = await nicenessDuringRun(
      PERMISSION_FLAGS.filter((flag) => !flag.startsWith("--allow-sys")),
    );
    assert.deepEqual(new Set(all), new Set([base]));
  },
});
