/**
 * Reading a child process's output line by line, to wait for what it announces (no sleeps).
 *
 * @module
 */

/** Lines of a byte stream, read on demand; everything read is kept in {@link LineReader.seen}. */
export class LineReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  /** Every complete line read so far. */
  readonly seen: string[] = [];

  /** @param stream the child's stdout or stderr. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Reads until a line matches `pattern`, and returns its match; throws if the stream ends. */
  async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
    for (;;) {
      const newline = this.#buffer.indexOf("\n");
      if (newline !== -1) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        this.seen.push(line);
        const match = pattern.exec(line);
        if (match !== null) return match;
        continue;
      }
      const { done, value } = await this.#reader.read();
      if (done) {
        throw new Error(
          `output ended without a line matching ${pattern}:\n${this.seen.join("\n")}`,
        );
      }
      this.#buffer += value;
    }
  }

  /** Reads to the end; returns everything not yet returned as lines. */
  async rest(): Promise<string> {
    for (;;) {
      const { done, value } = await this.#reader.read();
      if (done) break;
      this.#buffer += value;
    }
    const rest = this.#buffer;
    this.#buffer = "";
    this.seen.push(...rest.split("\n").filter((line) => line !== ""));
    return rest;
  }
}
