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

/** The message of anything thrown (an `Error`'s message, else the value as text). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The first line of {@link errorMessage}: what a one-line report shows. */
export function messageOf(error: unknown): string {
  return errorMessage(error).split("\n")[0];
}
