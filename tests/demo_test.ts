import assert from "node:assert/strict";
import { join } from "node:path";

const DEMO = new URL("../tools/demo.ts", import.meta.url).pathname;

Deno.test("deno task demo: runs the whole tool locally and exits 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "d4c-demo-test-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", DEMO, dir],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `${out}\n${new TextDecoder().decode(stderr)}`);
    assert.match(out, /this run: 6 success, 1 failed/);
    assert.match(out, /The ingest exited 1, as expected: .*retired-dataset\.zip answers 404/);
    assert.ok(out.includes(`SQLite database   ${join(dir, "demo.sqlite")}`));
    assert.ok(out.includes(`Parquet manifest  ${join(dir, "demo.parquet")}`));
    assert.ok(out.includes(`stored objects    ${join(dir, "store")}`));
    assert.match(out, /12583257 B {2}demo\/archive\/tile-0001\.tif/);
    for (const file of ["demo.sqlite", "demo.parquet", "store/demo/archive/demo.parquet"]) {
      assert.ok((await Deno.stat(join(dir, file))).isFile, file);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
