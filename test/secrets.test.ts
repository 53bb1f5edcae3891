/**
 * Every secret a connection string can carry (the user info's password, `password` and
 * `sslpassword` parameters, ...) is masked wherever a URL is logged or printed: the
 * library's "rhythm ready" line and every CLI command's output and logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Rhythm } from 'rhythm';
import { maskUrl } from '../src/logger.js';
import { createTestDatabase } from './support/db.js';
import { runCli, spawnCli, killAll, removeScratch, TASKS_DIR } from './fixtures/cli-tasks/harness/cli.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let password: string;
/** The test database's URL with its password moved into the query, next to an sslpassword. */
let inQuery: string;
const SSL_SECRET = 'ssl-Secret-4711';

beforeAll(async () => {
  db = await createTestDatabase('rhythm_secrets');
  const u = new URL(db.url);
  password = decodeURIComponent(u.password);
  expect(password.length).toBeGreaterThan(8);
  u.password = '';
  u.searchParams.set('password', password);
  u.searchParams.set('sslpassword', SSL_SECRET);
  u.searchParams.set('application_name', 'secrets-test');
  inQuery = u.toString();
});

afterAll(async () => {
  await killAll();
  removeScratch();
  await db?.drop();
});

describe('maskUrl', () => {
  const cases: [string, string][] = [
    ['postgres://u:pw@h:5432/db', 'postgres://u:***@h:5432/db'],
    ['postgres://u@h/db?password=pw', 'postgres://u@h/db?password=***'],
    ['postgres://u@h/db?sslpassword=pw&sslmode=require', 'postgres://u@h/db?sslpassword=***&sslmode=require'],
    ['postgres://u:a@h/db?PassWord=b&password=c', 'postgres://u:***@h/db?PassWord=***&password=***'],
    ['postgres://u@h/db?pass%77ord=pw', 'postgres://u@h/db?password=***'],
    ['postgres://:pw@h/db', 'postgres://:***@h/db'],
    ['postgresql://u@h/db?sslkey=/etc/key.pem&sslcert=/etc/c.pem', 'postgresql://u@h/db?sslkey=/etc/key.pem&sslcert=/etc/c.pem'],
    ['postgres://u@h/db?token=t&secret=s&key=k', 'postgres://u@h/db?token=***&secret=***&key=***'],
    ['host=h password=pw', '<unparseable url>'],
    ['postgres://u:p%40ss@h/db', 'postgres://u:***@h/db'],
  ];
  it.each(cases)('%s -> %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked);
  });
});

describe('logs and output carry no secret', () => {
  const leaks = (text: string) => [password, encodeURIComponent(password), SSL_SECRET].filter((s) => text.includes(s));

  it('the library\'s "rhythm ready" line', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    for (const url of [db.url, inQuery]) {
      const r = await Rhythm.init({ databaseUrl: url, logger: pino({ level: 'info' }, sink) });
      await r.shutdown();
    }
    const ready = lines.filter((l) => l.includes('rhythm ready'));
    expect(ready).toHaveLength(2);
    expect(ready.join('\n')).toContain('password=***');
    expect(ready.join('\n')).toContain('sslpassword=***');
    expect(leaks(lines.join('\n'))).toEqual([]);
  });

  it('every CLI command, the URL given as a flag or in the environment', { timeout: 60_000 }, async () => {
    const outputs: string[] = [];
    const common = (conn: readonly string[]) => [...conn, '--log-level', 'debug'];
    const flag = { conn: ['--database-url', inQuery], opts: { env: {} } };
    // migrate first: status needs the tables. The other runs share nothing: all at once.
    const migrated = await runCli(['migrate', ...common(flag.conn)], flag.opts);
    expect(migrated.code, `flag: ${migrated.stderr}`).toBe(0);
    const statuses = (
      [
        ['flag', flag.conn, {}],
        ['env', [], { RHYTHM_DATABASE_URL: inQuery }],
        ['userinfo', ['--database-url', db.url], {}],
      ] as const
    ).map(async ([how, conn, env]) => {
      const res = await runCli(['status', ...common(conn)], { env: { ...env } });
      expect(res.code, `${how}: ${res.stderr}`).toBe(0);
      return res;
    });
    // The one-shot commands once (they share the code that logs the URL).
    const oneShots = [
      ['config'],
      ['config', '--json'],
      ['enqueue', 'echo', '{"a":1}'],
      ['get', '999999'],
      ['cancel', '999999'],
      ['migrate', '--status'],
    ].map((args) => runCli([...args, ...common(flag.conn)], flag.opts));
    const worker = spawnCli(['start', ...common(flag.conn), '--tasks', TASKS_DIR, '--only', 'echo', '--queue', 'secrets:0'], flag.opts);
    const started = worker.waitForLog(/rhythm start running/).then(async () => {
      expect((await worker.stop('SIGTERM')).code).toBe(0);
    });
    // A URL that cannot be used is named, masked, in the error.
    const bad = new URL(inQuery);
    bad.searchParams.set('password', 'wrong-Secret-99');
    const refusedRun = runCli(['status', '--database-url', bad.toString()]);
    for (const r of [migrated, ...(await Promise.all([...statuses, ...oneShots]))]) outputs.push(r.stdout, r.stderr);
    await started;
    outputs.push(worker.stdout, worker.stderr);
    const all = outputs.join('\n');
    expect(all).toContain('password=***'); // the URL is shown, masked
    expect(all).toMatch(/postgres:\/\/postgres:\*\*\*@/);
    expect(leaks(all)).toEqual([]);
    const refused = await refusedRun;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('password=***');
    expect(refused.stderr).not.toContain('wrong-Secret-99');
  });
});
