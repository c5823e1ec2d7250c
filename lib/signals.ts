/**
 * Listening for the operator's stop signals: SIGINT (Ctrl-C) and SIGTERM.
 *
 * @module
 */

/** The stop signals a command listens for. */
export type StopSignal = "SIGINT" | "SIGTERM";

/** What {@link listenForStopSignals} registered, to hand back to {@link stopListening}. */
export type SignalListeners = [StopSignal, () => void][];

/** Calls `listenerFor(name)`'s listener on each SIGINT and SIGTERM until {@link stopListening}. */
export function listenForStopSignals(
  listenerFor: (name: StopSignal) => () => void,
): SignalListeners {
  const listeners: SignalListeners = [];
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    const listener = listenerFor(name);
    try {
      Deno.addSignalListener(name, listener);
      listeners.push([name, listener]);
    } catch {
      // Windows has no SIGTERM listener; SIGINT (Ctrl-C) still works there.
    }
  }
  return listeners;
}

/** Removes the listeners {@link listenForStopSignals} added. */
export function stopListening(listeners: SignalListeners): void {
  for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
}
