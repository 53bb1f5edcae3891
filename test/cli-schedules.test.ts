/**
 * Cron schedules from the command line: `rhythm schedules` (table and --json, with the next
 * fire times and where each came from), and the schedules a config file declares, synced by
 * every `rhythm scheduler` at start: two schedulers starting at once on one config agree, a
 * schedule's `group` reaches the executions it fires (each due time fired once across both
 * processes), one no longer declared is removed at the next start, and schedules made with
 * r.schedule() are never touched by a sync. A bad declaration stops the scheduler before it
 * connects, naming the file and the schedule.
 *
 * `rhythm schedules` runs mostly in this process (runInProcess: runCli with its own streams),
 * once as the shipped executable; the schedulers are processes of their own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Rhythm, type Schedule } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { runCli, runInProcess, spawnCli, killAll, removeScratch, newDir, type CliProcess } from './fixtures/cli-tasks/harness/cli.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;
let conn: string[];

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_schedules');
  conn = ['--database-url', db.url, '--schema', 'cs'];
  r = await Rhythm.init({ databaseUrl: db.url, schema: 'cs' });
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await r?.shutdown();
  await db?.drop();
  removeScratch();
});

function configDir(name: string, config: unknown): string {
  const dir = newDir(name);
  writeFileSync(path.join(dir, 'rhythm.config.json'), JSON.stringify(config, null, 2));
  return dir;
}

interface SyncLog {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
}

async function synced(p: CliProcess): Promise<SyncLog> {
  return (await p.waitForLog('cron schedules of the config file synced')) as unknown as SyncLog;
}

async function schedulesJson(): Promise<Schedule[]> {
  const res = await runInProcess(['schedules', ...conn, '--json']);
  expect(res.code, res.stderr).toBe(0);
  return (JSON.parse(res.stdout) as { schedules: Schedule[] }).schedules;
}

const NIGHTLY = { cron: '0 3 * * *', timezone: 'Europe/Paris', task: 'report', payload: { kind: 'nightly' } };
const EVERY_SECOND = { cron: '* * * * * *', task: 'ping', queue: 'cfg', group: 'tenant-1' };

describe('config-file schedules and rhythm schedules', () => {
  it('two schedulers sync the declared schedules once, fire them once, and keep api schedules', async () => {
    expect(await r.schedule('by-api', { cron: '0 4 * * *', task: 'cleanup' })).toBe('created');
    const dir = configDir('both', { schedules: { nightly: NIGHTLY, 'every-second': EVERY_SECOND }, tick: '50ms' });
    const a = spawnCli(['scheduler', ...conn], { cwd: dir });
    const b = spawnCli(['scheduler', ...conn], { cwd: dir });
    const [sa, sb] = await Promise.all([synced(a), synced(b)]);
    // One sync created both; the other found them as declared.
    expect([...sa.created, ...sb.created].sort()).toEqual(['every-second', 'nightly']);
    expect([...sa.unchanged, ...sb.unchanged].sort()).toEqual(['every-second', 'nightly']);
    expect([...sa.removed, ...sb.removed]).toEqual([]);

    // Fired by both processes' internal workers, each due time once, with the schedule's group.
    await expect.poll(() => r.list({ queue: 'cfg' }).then((p) => p.items.length), { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    const fired = (await r.list({ queue: 'cfg', limit: 1000 })).items;
    expect(fired.every((e) => e.name === 'ping' && e.group === 'tenant-1')).toBe(true);
    const dueTimes = fired.map((e) => e.runAt.getTime());
    expect(new Set(dueTimes).size).toBe(dueTimes.length);
    expect(await Promise.all([a.stop(), b.stop()])).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);

    const list = await schedulesJson();
    expect(list.map((s) => [s.name, s.synced])).toEqual([
      ['by-api', false],
      ['every-second', true],
      ['nightly', true],
    ]);
    const nightly = list.find((s) => s.name === 'nightly')!;
    expect(nightly).toMatchObject({
      cron: '0 3 * * *',
      timezone: 'Europe/Paris',
      task: 'report',
      payload: { kind: 'nightly' },
      queue: 'default',
      group: null,
    });
    expect(nightly.nextRuns).toHaveLength(5);
    // 03:00 in Paris is 01:00 or 02:00 UTC, a day apart.
    for (const at of nightly.nextRuns) expect(['01:00:00.000Z', '02:00:00.000Z']).toContain(String(at).slice(11));
    expect(Date.parse(String(nightly.nextRuns[1])) - Date.parse(String(nightly.nextRuns[0]))).toBeGreaterThanOrEqual(23 * 3_600_000);
    expect(list.find((s) => s.name === 'every-second')!.group).toBe('tenant-1');

    const text = await runCli(['schedules', ...conn]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CRON\s+TIMEZONE\s+TASK\s+QUEUE\s+NEXT FIRES\s+LAST FIRED\s+FROM$/);
    expect(lines.find((l) => l.startsWith('by-api'))).toMatch(/0 4 \* \* \*\s+UTC\s+cleanup\s+default\s+\S+T04:00:00\.000Z, .*\s+-\s+api$/);
    expect(lines.find((l) => l.startsWith('nightly'))).toMatch(/Europe\/Paris\s+report\s+default\s+.*config$/);
  });

  it('removes a schedule the config no longer declares at the next start; "schedules": {} removes all declared ones', async () => {
    const fewer = configDir('fewer', { schedules: { nightly: { ...NIGHTLY, payload: { kind: 'nightly', v: 2 } } } });
    // A config without "schedules" syncs nothing: started alongside, it neither removes what
    // the first declares (then the list below would lack "nightly") nor runs first (then the
    // first would find "nightly" gone and create it, not update it).
    const none = configDir('none', { tick: '1s' });
    const s1 = spawnCli(['scheduler', ...conn], { cwd: fewer });
    const s2 = spawnCli(['scheduler', ...conn, '--log-level', 'info'], { cwd: none });
    expect(await synced(s1)).toMatchObject({ created: [], updated: ['nightly'], unchanged: [], removed: ['every-second'] });
    await s2.waitForLog('internal worker started');
    expect((await schedulesJson()).map((s) => s.name)).toEqual(['by-api', 'nightly']);
    await Promise.all([s1.stop(), s2.stop()]);
    expect(s2.logs.some((l) => l.msg === 'cron schedules of the config file synced')).toBe(false);
    expect((await schedulesJson()).map((s) => s.name)).toEqual(['by-api', 'nightly']);

    const empty = configDir('empty', { schedules: {} });
    const s3 = spawnCli(['scheduler', ...conn], { cwd: empty });
    expect(await synced(s3)).toMatchObject({ removed: ['nightly'] });
    await s3.stop();
    expect((await schedulesJson()).map((s) => [s.name, s.synced])).toEqual([['by-api', false]]);
    expect((await runInProcess(['schedules', ...conn, '--json'])).stdout).toContain('"by-api"');
  });

  it('refuses a bad declaration before connecting, naming the file and the schedule (exit code 2)', async () => {
    const refused = ['--database-url', 'postgres://x:y@127.0.0.1:1/nowhere'];
    const cases: [unknown, RegExp][] = [
      [
        { schedules: { broken: { cron: '0 25 * * *', task: 't' } } },
        /"schedules": schedule "broken": invalid cron expression "0 25 \* \* \*"/,
      ],
      [
        { schedules: { zoned: { cron: '0 3 * * *', timezone: 'Mars/Olympus', task: 't' } } },
        /"schedules": schedule "zoned": unknown time zone "Mars\/Olympus"/,
      ],
      [
        { schedules: { typo: { cron: '0 3 * * *', task: 't', queu: 'x' } } },
        /"schedules": schedule "typo": unknown schedule option "queu"/,
      ],
      [{ schedules: [] }, /"schedules" must be an object of schedules by name/],
    ];
    // The first as the shipped executable, the others in this process, all at once.
    const dirs = cases.map(([config]) => configDir('bad', config));
    const results = await Promise.all(dirs.map((dir, i) => (i === 0 ? runCli : runInProcess)(['scheduler', ...refused], { cwd: dir })));
    cases.forEach(([, message], i) => {
      const res = results[i]!;
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(path.join(dirs[i]!, 'rhythm.config.json'));
      expect(res.stderr).toMatch(message);
    });
  });
});
