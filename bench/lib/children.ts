/**
 * Worker child processes (bench/child/worker-process.ts) seen from the bench: started with an
 * IPC channel, tracked in a registry so that every one is stopped at the end, on error and on
 * Ctrl+C (killAll).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { CHILD_SCRIPT, epochMs } from './common.js';
import type { ChildConfig } from '../child/worker-process.js';

type Msg = { type: string; [k: string]: unknown };

const live = new Set<ChildProcess>();

export class WorkerChild {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly started: Promise<void>;
  private readonly exited: Promise<void>;
  private readonly listeners = new Map<string, ((m: Msg) => void)[]>();
  onRun: ((k: number, s: number) => void) | undefined;
  stderr = '';

  constructor(config: ChildConfig, execArgv: string[] = []) {
    this.proc = fork(CHILD_SCRIPT, [], {
      env: { ...process.env, RHYTHM_BENCH_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv,
    });
    live.add(this.proc);
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4_000);
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    void this.exited.then(() => live.delete(this.proc));
    this.proc.on('message', (m: Msg) => {
      if (m.type === 'run') {
        this.onRun?.(m.k as number, m.s as number);
        return;
      }
      const ls = this.listeners.get(m.type);
      if (ls?.length) ls.shift()!(m);
    });
    const failed = this.exited.then(() => {
      throw new Error(
        `bench worker process (${config.system}) exited early (code ${this.proc.exitCode}): ${this.stderr.trim().slice(-1_000)}`,
      );
    });
    this.ready = Promise.race([this.next('ready').then(() => undefined), failed]);
    this.started = Promise.race([this.next('started').then(() => undefined), failed]);
    this.ready.catch(() => undefined);
    this.started.catch(() => undefined);
  }

  private next(type: string): Promise<Msg> {
    return new Promise((resolve) => {
      const ls = this.listeners.get(type) ?? [];
      ls.push(resolve);
      this.listeners.set(type, ls);
    });
  }

  private send(m: Msg): void {
    if (this.proc.connected) this.proc.send(m);
  }

  start(): void {
    this.send({ type: 'start' });
  }

  /** Child clock minus ours (ms), from the round trip with the smallest delay. */
  async clockOffset(samples = 15): Promise<number> {
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < samples; i++) {
      const t0 = epochMs();
      const reply = this.next('clock');
      this.send({ type: 'clock', id: i });
      const m = await reply;
      const t1 = epochMs();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: (m.t as number) - (t0 + t1) / 2 };
    }
    return best.offset;
  }

  /** CPU time the process used over `ms` (as a fraction of one core). */
  async idleCpu(ms: number): Promise<{ cpuMs: number; share: number }> {
    const reply = this.next('idle');
    this.send({ type: 'idle', ms });
    const m = await reply;
    return { cpuMs: m.cpuMs as number, share: (m.cpuMs as number) / ms };
  }

  /** Graceful stop; resolves with how many tasks this process ran. Kills it if it takes too long. */
  async stop(timeoutMs = 15_000): Promise<number> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return 0;
    const reply = this.next('stopped');
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    try {
      const m = await Promise.race([reply, this.exited.then(() => ({ type: 'stopped', ran: -1 }))]);
      await this.exited;
      return m.ran as number;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Kills every child still running (end of run, error, signal). */
export async function killAll(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const p of live) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    waits.push(new Promise((r) => p.once('exit', () => r())));
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 3_000).unref();
  }
  await Promise.all(waits);
}
