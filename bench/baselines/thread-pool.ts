/**
 * Shared driver of the raw thread-pool baselines: the same task modules, the same thread
 * count, one run() per task, no database. The pool is warmed (every thread has loaded the
 * module) before the clock starts; then all tasks are submitted at once.
 */
import { epochMs, type StepProgress } from '../lib/common.js';
import { cpuMeter, type CpuSample } from '../lib/cpu.js';

export interface RawPool {
  run(payload: unknown): Promise<unknown>;
  destroy(): Promise<void>;
}

export async function measurePool(
  pool: RawPool,
  threads: number,
  n: number,
  payload: (i: number) => unknown,
  progress: StepProgress,
  label: string,
  /** Given each timed run's result. */
  onResult?: (result: unknown) => void,
): Promise<{ seconds: number; rate: number; done: number; cpu: CpuSample }> {
  try {
    await Promise.all(Array.from({ length: threads * 2 }, (_, i) => pool.run(payload(i))));
    progress.begin(label, n);
    let done = 0;
    const timer = setInterval(() => progress.update(done), 200);
    const meter = cpuMeter();
    const t0 = epochMs();
    const runs: Promise<unknown>[] = new Array(n);
    for (let i = 0; i < n; i++)
      runs[i] = pool.run(payload(i)).then((res) => {
        onResult?.(res);
        done++;
      });
    await Promise.all(runs);
    const seconds = (epochMs() - t0) / 1000;
    const cpu = meter();
    clearInterval(timer);
    progress.update(done);
    return { seconds, rate: done / seconds, done, cpu };
  } finally {
    await pool.destroy();
  }
}
