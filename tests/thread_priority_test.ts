import assert from "node:assert/strict";
import { CHECKPOINT_THREAD_NICENESS } from "../lib/checkpoint.ts";
import { PERMISSION_FLAGS } from "../tools/permissions.ts";
import { startCli } from "./support/live_cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { fixture, rowsByUrl, urlList } from "./support/fixture.ts";

const CONCURRENCY = 2;
const URLS = urlList(6);

/** The nice value of each thread of process `pid`, by thread id. */
function threadNiceness(pid: number): Map<number, number> {
  const niceness = new Map<number, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
    // Fields after the parenthesised thread name (which may hold spaces): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    niceness.set(Number(entry.name), Number(fields[19 - 3]));
  }
  return niceness;
}

/** Runs `URLS` with `permissions` and returns its threads' nice values while requests are held. */
async function nicenessDuringRun(permissions: readonly string[]): Promise<Map<number, number>> {
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
    return new Map([...niceness].map(([tid, nice]) => [tid === cli.pid ? 0 : tid, nice]));
  } finally {
    await worker.close();
  }
}

const linuxOnly = { ignore: Deno.build.os !== "linux" };
const base = Deno.build.os === "linux" ? threadNiceness(Deno.pid).get(Deno.pid)! : 0;

Deno.test({
  name: "the thread that commits and checkpoints runs at a lower priority than dispatch",
  ...linuxOnly,
  ignore: linuxOnly.ignore || base >= CHECKPOINT_THREAD_NICENESS,
  fn: async () => {
    const niceness = await nicenessDuringRun(PERMISSION_FLAGS);
    assert.equal(niceness.get(0), base, "the dispatch (main) thread keeps its priority");
    // Threads the checkpoint thread starts for its file writes inherit its priority.
    assert.ok(
      [...niceness.values()].includes(CHECKPOINT_THREAD_NICENESS),
      `a thread lowered: ${[...niceness.values()]}`,
    );
  },
});

Deno.test({
  name: "without --allow-sys=setPriority a run works the same, every thread at one priority",
  ...linuxOnly,
  fn: async () => {
    const niceness = await nicenessDuringRun(
      PERMISSION_FLAGS.filter((flag) => !flag.startsWith("--allow-sys")),
    );
    assert.deepEqual(new Set(niceness.values()), new Set([base]));
  },
});
