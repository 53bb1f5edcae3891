/**
 * What SIGTERM and SIGINT do to a process that runs Rhythm: one behaviour for the library
 * (`Rhythm.init({ handleSignals: true })`) and for the `rhythm` command, so the two cannot drift.
 *
 * - The first signal asks for a graceful stop: `shutdown()` (no new claims, in-flight tasks
 *   finish until the stop's time limit, the rest are handed back), then the process exits 0
 *   (1 if the stop failed).
 * - A second signal forces a fast stop: `shutdown({ timeoutMs: 0, force: true })` aborts
 *   in-flight tasks at once and gives up outcomes the database cannot take now (it may be
 *   down: their leases expire and recovery runs those tasks again); the process exits 130.
 * - If even that hangs (a statement on a silent connection, a pool that cannot close), a
 *   backstop timer ends the process with 130 anyway: a second signal always stops it.
 */
import type { Logger } from 'pino';
import type { ShutdownOptions } from '../rhythm.js';

/** After a second signal: the handlers' abort grace (5 s), plus a little for the hand-backs. */
const FORCED_EXIT_MS = 7_000;

export interface ShutdownSignalOptions {
  log: Logger;
  /** Stops everything; called again with `{ timeoutMs: 0, force: true }` on a second signal. */
  shutdown(options: ShutdownOptions): Promise<void>;
  /** The graceful stop's time limit (undefined: shutdown()'s own default). */
  timeoutMs?: number;
  /** Ends the process once the stop settled; default process.exit. */
  exit?(code: 0 | 1 | 130): void;
  /** Runs just before the backstop ends the process (e.g. to signal a server we started). */
  beforeForcedExit?(): void;
  /** How long a forced stop may take before the backstop exits (default FORCED_EXIT_MS). */
  forcedExitMs?: number;
}

export interface ShutdownSignals {
  /** The first signal received, if any. */
  readonly signal: NodeJS.Signals | undefined;
  /** Whether a second signal forced the stop. */
  readonly forced: boolean;
  /** Stops listening for the signals. */
  dispose(): void;
}

/** Installs the SIGTERM/SIGINT handlers described above. */
export function handleShutdownSignals(options: ShutdownSignalOptions): ShutdownSignals {
  const { log } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let signal: NodeJS.Signals | undefined;
  let forced = false;
  let exited = false;
  const finish = (code: 0 | 1 | 130) => {
    if (exited) return;
    exited = true;
    exit(code);
  };

  const onSignal = (sig: NodeJS.Signals) => {
    if (signal === undefined) {
      signal = sig;
      log.info(
        { signal: sig, shutdownTimeoutMs: options.timeoutMs },
        'signal received: shutting down gracefully (send it again to force a fast stop)',
      );
      options.shutdown(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }).then(
        () => {
          if (forced) return; // the forced stop reports and exits
          log.info({ signal: sig }, 'graceful shutdown complete');
          finish(0);
        },
        (err: unknown) => {
          if (forced) return;
          log.error({ err }, 'shutdown failed');
          finish(1);
        },
      );
      return;
    }
    if (forced) return;
    forced = true;
    log.warn({ signal: sig }, 'second signal: forcing a fast stop (in-flight tasks are aborted and handed back)');
    const backstopMs = options.forcedExitMs ?? FORCED_EXIT_MS;
    const backstop = setTimeout(() => {
      log.error({ afterMs: backstopMs }, 'forced stop did not finish in time; exiting now');
      options.beforeForcedExit?.();
      finish(130);
    }, backstopMs);
    backstop.unref();
    options
      .shutdown({ timeoutMs: 0, force: true })
      .then(
        () => log.warn('forced stop complete'),
        (err: unknown) => log.error({ err }, 'forced stop failed'),
      )
      .finally(() => {
        clearTimeout(backstop);
        finish(130);
      });
  };

  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    get signal() {
      return signal;
    },
    get forced() {
      return forced;
    },
    dispose() {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}
