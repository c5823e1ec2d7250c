import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { PERMISSION_FLAGS, V8_FLAGS } from "../tools/permissions.ts";
import denoJson from "../deno.json" with { type: "json" };

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));
const FLAG = /(?<![\w-])--?[a-zA-Z][\w-]*/g;

/** The flags of the options section of `--help` output. */
function helpFlags(help: string): string[] {
  const flags = help.split("\n")
    .filter((line) => /^ {2}-/.test(line))
    .flatMap((line) => line.trim().split(/\s{2,}/)[0].match(FLAG) ?? []);
  return flags.sort();
}

/** The subcommands listed by `--help`. */
function helpCommands(help: string): string[] {
  const section = help.split("\nCommands:\n")[1] ?? "";
  return section.split("\n").flatMap((line) => /^ {2}([a-z][\w-]*) /.exec(line)?.[1] ?? []);
}

/** The flags in the first column of the first table after the README heading `heading`. */
function readmeFlags(heading: RegExp): string[] {
  const lines = README.split("\n");
  const start = lines.findIndex((line) => /^#+ /.test(line) && heading.test(line));
  assert.ok(start >= 0, `README has a heading matching ${heading}`);
  const tableStart = lines.findIndex((line, i) => i > start && line.startsWith("|"));
  const rows = [];
  for (let i = tableStart + 2; i < lines.length && lines[i].startsWith("|"); i++) {
    rows.push(lines[i].split("|")[1]);
  }
  return rows.flatMap((cell) => cell.match(FLAG) ?? []).sort();
}

Deno.test("the README's flag tables list exactly the flags of each command's --help", async () => {
  const root = await runCli(["--help"]);
  assert.equal(root.code, 0, root.stderr);
  assert.deepEqual(readmeFlags(/^### Ingest run/), helpFlags(root.stdout));
  const commands = helpCommands(root.stdout);
  assert.ok(commands.includes("status") && commands.includes("export"), root.stdout);
  for (const command of commands) {
    const help = await runCli([command, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.deepEqual(
      readmeFlags(new RegExp(`\`${command}\``)),
      helpFlags(help.stdout),
      `README table of \`${command}\``,
    );
  }
});

Deno.test("one permission list: the binary, deno task start, the README and main.ts agree", () => {
  const flags = PERMISSION_FLAGS.join(" ");
  assert.ok(!PERMISSION_FLAGS.some((f) => f === "-A" || f === "--allow-all"));
  assert.match(denoJson.tasks.compile, /tools\/compile\.ts/);
  assert.ok(
    denoJson.tasks.start.includes(`deno run ${flags} ${V8_FLAGS} main.ts`),
    denoJson.tasks.start,
  );
  assert.ok(README.includes(`deno install --global --name d4c-http-ingestor ${flags} jsr:`));
  const main = Deno.readTextFileSync(new URL("../main.ts", import.meta.url));
  assert.ok(PERMISSION_FLAGS.every((f) => main.includes(f)) && !/\s-A\s/.test(main));
});
