/**
 * The process's own output streams, as the commands write to them: whole strings, written
 * synchronously so a summary is never cut short by an exit right after it.
 *
 * @module
 */

import type { Output } from "./run_ingest.ts";

/** A function writing all of `text` to `stream`. */
export function writer(stream: { writeSync(p: Uint8Array): number }): (text: string) => void {
  const encoder = new TextEncoder();
  return (text) => {
    const bytes = encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
  };
}

/** stdout and stderr; colour only on a terminal and when `NO_COLOR` is unset. */
export function processOutput(): Output {
  const errIsTerminal = Deno.stderr.isTerminal();
  return {
    err: writer(Deno.stderr),
    out: writer(Deno.stdout),
    errIsTerminal,
    errColour: errIsTerminal && !Deno.noColor,
  };
}
