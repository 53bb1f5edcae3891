/**
 * The one signal path (src/lifecycle/signals.ts), without a database: the first signal asks
 * for a graceful stop and exits 0 (1 if it failed); a second one forces
 * shutdown({ timeoutMs: 0, force: true }) and exits 130; a forced stop that hangs is ended by
 * the backstop. The handlers are called directly (not through process.emit), so the test
 * runner's own signal handlers are left alone.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { handleShutdownSignals, type ShutdownSignalOptions } from '../src/lifecycle/signals.js';
import type { ShutdownOptions } from '../src/rhythm.js';

const log = pino({ level: 'silent' });
let dispose: (() => void) | undefined;

afterEach(() => dispose?.());

/** Installs the handlers; returns them, to be called as the process would on a signal. */
function install(options: Omit<ShutdownSignalOptions, 'log'>) {
  const before = new Set(process.listeners('SIGTERM'));
  const signals = handleShutdownSignals({ log, ...options });
  dispose = () => signals.dispose();
  const added = process.listeners('SIGTERM').filter((l) => !before.has(l));
  expect(added).toHaveLength(1);
  const send = (sig: NodeJS.Signals) => (added[0] as (s: NodeJS.Signals) => void)(sig);
  return { signals, send };
}

describe('shutdown signals', () => {
  it('first signal: a graceful stop with the configured time limit, then exit 0', async () => {
    const calls: ShutdownOptions[] = [];
    const exit = vi.fn();
    const { signals, send } = install({ shutdown: async (o) => void calls.push(o), exit, timeoutMs: 1_234 });
    send('SIGTERM');
    await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(0));
    expect(calls).toEqual([{ timeoutMs: 1_234 }]);
    expect(signals.signal).toBe('SIGTERM');
    expect(signals.forced).toBe(false);
  });

  it('a failed graceful stop exits 1', async () => {
    const exit = vi.fn();
    const { send } = install({ shutdown: () => Promise.reject(new Error('pool would not close')), exit });
    send('SIGINT');
    await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(1));
  });

  it('second signal: shutdown({ timeoutMs: 0, force: true }), then exit 130, once', async () => {
    const calls: ShutdownOptions[] = [];
    let finishGraceful!: () => void;
    const graceful = new Promise<void>((resolve) => (finishGraceful = resolve));
    const exit = vi.fn();
    const { signals, send } = install({
      shutdown: (o) => {
        calls.push(o);
        return o.force ? Promise.resolve() : graceful;
      },
      exit,
    });
    send('SIGINT');
    send('SIGINT');
    send('SIGINT'); // a third changes nothing
    await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(130));
    expect(calls).toEqual([{}, { timeoutMs: 0, force: true }]);
    expect(signals.forced).toBe(true);
    finishGraceful(); // the graceful stop settling later does not exit again
    await new Promise((resolve) => setImmediate(resolve));
    expect(exit).toHaveBeenCalledTimes(1);
  });

  it('a forced stop that hangs is ended by the backstop (exit 130), after beforeForcedExit', async () => {
    const exit = vi.fn();
    const beforeForcedExit = vi.fn();
    const { send } = install({ shutdown: () => new Promise<void>(() => undefined), exit, beforeForcedExit, forcedExitMs: 20 });
    send('SIGTERM');
    send('SIGTERM');
    await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(130));
    expect(beforeForcedExit).toHaveBeenCalledTimes(1);
    expect(beforeForcedExit.mock.invocationCallOrder[0]!).toBeLessThan(exit.mock.invocationCallOrder[0]!);
  });

  it('dispose() removes the handlers', () => {
    const before = process.listenerCount('SIGINT');
    const signals = handleShutdownSignals({ log, shutdown: async () => undefined, exit: vi.fn() });
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    signals.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
