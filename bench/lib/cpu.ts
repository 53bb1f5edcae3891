/**
 * Where the CPU goes during a measurement: the whole machine (os.cpus), this process (all its
 * threads, process.cpuUsage) and, for the embedded server, Postgres (the postmaster and its
 * backends, from /proc on Linux). On a 2-core machine this tells whether the cores or the
 * software set the limit, and how much Postgres work each task costs.
 */
import os from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchDatabase } from './database.js';

export interface CpuSample {
  wallMs: number;
  /** Fraction of all cores busy (whole machine, every process). */
  machineBusy: number;
  /** CPU time of this process (main thread and worker threads). */
  benchMs: number;
  /** CPU time of this process's main thread alone (Linux; 10 ms resolution). */
  mainThreadMs?: number;
  /** CPU time of our Postgres server, when we can see it (embedded server on Linux). */
  postgresMs?: number;
}

function machineTimes(): { busy: number; total: number } {
  return os.cpus().reduce(
    (a, c) => {
      const t = c.times;
      a.busy += t.user + t.nice + t.sys + t.irq;
      a.total += t.user + t.nice + t.sys + t.irq + t.idle;
      return a;
    },
    { busy: 0, total: 0 },
  );
}

const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

/**
 * CPU ms of a server's whole process tree since it started: the root's own time, the time of
 * its children that exited and were reaped (the root's cutime/cstime: the postmaster reaps
 * every backend), and the time of its live children. Summing live children alone would drop
 * a backend's CPU the moment it exits, and a measurement across such an exit would come out
 * negative; the reaped time keeps the total monotonic.
 */
function treeCpuMs(rootPid: number): number | undefined {
  try {
    let ticks = 0;
    let sawRoot = false;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(path.join('/proc', entry, 'stat'), 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(fields[1]);
      if (pid !== rootPid && ppid !== rootPid) continue;
      if (pid === rootPid) sawRoot = true;
      // utime + stime + cutime + cstime: a backend's own reaped children (rare) count too.
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    }
    return sawRoot ? ticks * TICK_MS : undefined;
  } catch {
    return undefined;
  }
}

/** CPU ms of this process's main thread (its thread id is the process id), from /proc. */
function mainThreadCpuMs(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

function postmasterPid(db: BenchDatabase | undefined): number | undefined {
  if (!db?.server || process.platform !== 'linux') return undefined;
  try {
    return Number(readFileSync(path.join(db!.server!.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** Starts measuring; call the returned function to read the sample. */
export function cpuMeter(db?: BenchDatabase): () => CpuSample {
  const pg = postmasterPid(db);
  const m0 = machineTimes();
  const p0 = process.cpuUsage();
  const t0main = mainThreadCpuMs();
  const g0 = pg !== undefined ? treeCpuMs(pg) : undefined;
  const t0 = performance.now();
  return () => {
    const m1 = machineTimes();
    const p = process.cpuUsage(p0);
    const t1main = mainThreadCpuMs();
    const g1 = pg !== undefined ? treeCpuMs(pg) : undefined;
    const total = m1.total - m0.total;
    return {
      wallMs: performance.now() - t0,
      machineBusy: total > 0 ? (m1.busy - m0.busy) / total : 0,
      benchMs: (p.user + p.system) / 1000,
      mainThreadMs: t0main !== undefined && t1main !== undefined ? t1main - t0main : undefined,
      postgresMs: g0 !== undefined && g1 !== undefined ? g1 - g0 : undefined,
    };
  };
}

/** "machine 97% busy; Postgres 0.90 cores, 41 µs a task; bench process 0.80 cores, 35 µs a task (main thread 20 µs)" */
export function describeCpu(s: CpuSample, tasks: number): string {
  const cores = (ms: number) => (ms / s.wallMs).toFixed(2);
  const perTask = (ms: number) => `${((ms * 1000) / tasks).toFixed(0)} µs a task`;
  const parts = [`machine ${(s.machineBusy * 100).toFixed(0)}% busy`];
  if (s.postgresMs !== undefined) parts.push(`Postgres ${cores(s.postgresMs)} cores, ${perTask(s.postgresMs)}`);
  const main = s.mainThreadMs !== undefined ? ` (main thread ${((s.mainThreadMs * 1000) / tasks).toFixed(0)} µs)` : '';
  parts.push(`bench process ${cores(s.benchMs)} cores, ${perTask(s.benchMs)}${main}`);
  return parts.join('; ');
}
