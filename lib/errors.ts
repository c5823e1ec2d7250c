/**
 * The one error type the CLI turns into a single line on stderr and exit code 2: bad flags, bad
 * input files, an incompatible database, a rejected token. Anything else is a bug.
 *
 * @module
 */

/** A problem the operator must fix before the tool can run; its message is one line. */
export class UsageError extends Error {
  /** @param message one line telling the operator what is wrong, without a trailing period. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
