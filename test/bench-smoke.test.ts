/**
 * Smoke test of `npm run bench -- --quick`: the bench runs as a child process, on a database
 * of its own on the test server, with even smaller sizes and one round (the interleaving is
 * tested in bench-rounds.test.ts); it must complete, do every task of every scenario exactly
 * once where it checks that, and report non-zero rates. It never checks how fast anything is:
 * this machine is shared and CI machines vary.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './support/db.js';

const RUN = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));

const SMALL = [
  '--quick',
  '--no-progress',
  '--n',
  '1000',
  '--pgboss-n',
  '500',
  '--pgboss',
  '250x1',
  '--cpu-n',
  '100',
  '--cpu-n10',
  '12',
  '--rounds-1ms',
  '200',
  '--rounds-10ms',
  '2000',
  '--latency-n',
  '40',
  '--latency-rate',
  '100',
  '--idle-ms',
  '300',
  '--bulk-n',
  '4000',
  '--scale-n',
  '1500',
  '--scale-procs',
  '1,2',
  '--wait-n',
  '500',
  '--repeat',
  '1',
];

interface Row {
  group: string;
  system: string;
  tasks: number;
  rate?: number;
  rounds?: number[];
  done?: number;
  verified?: boolean;
  latency?: { count: number; p50: number; max: number };
  extra?: Record<string, unknown>;
}

function runBench(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench -- --quick (smoke)', () => {
  it('completes every scenario, every task done, non-zero rates', async () => {
    expect(existsSync(RUN), 'dist/bench/run.js missing: npm test builds first').toBe(true);
    const db = await createTestDatabase('rhythm_bench');
    const out = mkdtempSync(path.join(tmpdir(), 'rhythm-bench-smoke-'));
    try {
      const { code, stdout, stderr } = await runBench([...SMALL, '--database-url', db.url, '--out', out], { ...process.env }, 210_000);
      expect(code, `bench exited with ${code}\n${stderr.slice(-3_000)}`).toBe(0);
      expect(stdout).toContain('| Scenario | System |');
      expect(stdout).toContain('### Goals (peers and baselines)');
      expect(stdout).toContain('### Goals (CPU tasks, wait() at scale)');

      const report = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as {
        errors: unknown[];
        rows: Row[];
        machine: { cores: number; postgres: string };
        goals: { set: string; id: string; met: boolean | null }[];
      };
      expect(report.errors).toEqual([]);
      expect(report.machine.cores).toBeGreaterThan(0);
      expect(report.machine.postgres).toMatch(/\d/);
      expect(existsSync(path.join(out, 'latest.svg'))).toBe(true);
      expect(readFileSync(path.join(out, 'latest.svg'), 'utf8')).toContain('<svg');

      const groups = new Set(report.rows.map((r) => r.group));
      for (const g of ['1', '2', '3a', '3b', '4', '5', '6', '7a', '7b', '8', '9', '10'])
        expect(groups, `scenario ${g} missing`).toContain(g);
      for (const r of report.rows) {
        const what = `${r.group} ${r.system}`;
        if (r.rate !== undefined) expect(r.rate, what).toBeGreaterThan(0);
        if (r.verified !== undefined) expect(r.verified, `${what}: not every task done exactly once`).toBe(true);
        if (r.rate !== undefined && r.done !== undefined) expect(r.done, what).toBe(r.tasks);
        // Every throughput row ran in the one round; its rate is that round's.
        if (r.rate !== undefined) expect(r.rounds, what).toEqual([r.rate]);
        if (r.latency) {
          expect(r.latency.count, what).toBeGreaterThan(0);
          expect(r.latency.p50, what).toBeGreaterThan(0);
        }
      }
      const systems = new Set(report.rows.map((r) => r.system));
      for (const s of ['Rhythm', 'Rhythm (defaults)', 'graphile-worker', 'pg-boss', 'Piscina (raw)', 'Tinypool (raw)'])
        expect(systems).toContain(s);
      for (const g of ['1', '2', '3a', '3b'])
        expect(
          report.rows.some((r) => r.group === g && r.system === 'Rhythm (defaults)'),
          `defaults row in ${g}`,
        ).toBe(true);
      // wait() at scale: the waits' SELECTs were counted, and the latency floor was measured.
      const waited = report.rows.find((r) => r.group === '8' && r.extra?.waiting === 'wait');
      expect(waited?.extra?.extraSelects, 'SELECTs caused by the waits').toEqual(expect.any(Number));
      expect(report.rows.find((r) => r.group === '4' && r.latency?.what === 'INSERT commit')?.latency?.count).toBeGreaterThan(0);
      // Every goal of both sets was evaluated (none left "not measured").
      expect(report.goals.filter((g) => g.met === null).map((g) => `${g.set} ${g.id}`)).toEqual([]);
      // Scaling: the history table and the processes agree that every task ran exactly once.
      expect(report.rows.filter((r) => r.group === '6')).toHaveLength(2);
    } finally {
      rmSync(out, { recursive: true, force: true });
      await db.drop();
    }
  }, 240_000);
});
