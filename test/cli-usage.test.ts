/**
 * The `rhythm` command without a database: help, usage errors (exit code 2, naming the flag
 * and value), configuration precedence (flags > env > config file > defaults), masking.
 *
 * Usage errors must be found before anything connects: every case runs with a database URL
 * that refuses connections, so a case that got as far as connecting would exit 1, not 2.
 *
 * Most runs are in this process (runInProcess: the same runCli with its own streams,
 * environment and folder), as a process each costs seconds on a loaded machine; a sample of
 * each kind also runs as the shipped executable, whose answers must be the same.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, runInProcess, killAll, removeScratch, newDir, TASKS_DIR } from './fixtures/cli-tasks/harness/cli.js';

const REFUSED = 'postgres://someone:hunter2@127.0.0.1:1/nowhere';
const COMMANDS = [
  'worker',
  'scheduler',
  'start',
  'migrate',
  'enqueue',
  'get',
  'list',
  'retry',
  'cancel',
  'status',
  'pause',
  'resume',
  'rate-limit',
  'schedules',
  'start-workflow',
  'signal',
  'dashboard',
  'config',
];

afterEach(killAll);
afterAll(removeScratch);

// A test that spawns several CLI processes: on a loaded 2-core machine a spawn can take
// seconds of waiting for a core, so it gets more than the suite's default to finish.
const SPAWNS_TIMEOUT_MS = 180_000;

/** Runs `cases` a few at a time (2 shared cores). */
async function inBatches<T, R>(cases: T[], fn: (c: T) => Promise<R>, width = 4): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < cases.length; i += width) out.push(...(await Promise.all(cases.slice(i, i + width).map(fn))));
  return out;
}

describe('rhythm --help', () => {
  it("prints the overview and each command's help on stdout with exit code 0", async () => {
    const [general, spawnedWorker] = await Promise.all([runCli(['--help']), runCli(['worker', '--help'])]);
    expect(general.code).toBe(0);
    for (const c of COMMANDS) expect(general.stdout).toContain(`  ${c} `);
    expect((await runInProcess(['--help'])).stdout).toBe(general.stdout);

    const results = await Promise.all(
      COMMANDS.map(async (c) => ({ c, long: await runInProcess([c, '--help']), short: await runInProcess(['help', c]) })),
    );
    for (const { c, long, short } of results) {
      expect(long.code, c).toBe(0);
      expect(long.stdout, c).toContain(`Usage: rhythm ${c}`);
      expect(long.stdout, c).toContain('--database-url');
      expect(short.stdout, c).toBe(long.stdout);
    }
    expect(spawnedWorker.code).toBe(0);
    expect(spawnedWorker.stdout).toBe(results.find((x) => x.c === 'worker')!.long.stdout);
    // Help wins over a flag that would otherwise be an error.
    const withBadFlag = await runInProcess(['worker', '--threads', 'lots', '-h']);
    expect(withBadFlag.code).toBe(0);
    expect(withBadFlag.stdout).toContain('Usage: rhythm worker');
  });

  it('prints the version', async () => {
    const [v, inProcess] = await Promise.all([runCli(['--version']), runInProcess(['--version'])]);
    expect(inProcess).toEqual(v);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('without a command prints the overview on stderr with exit code 2', async () => {
    const [r, inProcess] = await Promise.all([runCli([]), runInProcess([])]);
    expect(inProcess).toEqual(r);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: rhythm <command>');
  });
});

describe('usage errors: exit code 2, message naming the flag or value', () => {
  const tsOnly = newDir('ts-tasks');
  writeFileSync(path.join(tsOnly, 'job.ts'), 'export default function job() { return 1; }\n');

  interface Case {
    args: string[];
    env?: Record<string, string>;
    stdin?: string;
    expect: (string | RegExp)[];
    /** Also run as the shipped executable (a sample: each kind of mistake once). */
    spawn?: true;
  }
  const cases: Case[] = [
    { args: ['frobnicate'], expect: ['unknown command "frobnicate"'], spawn: true },
    { args: ['help', 'frobnicate'], expect: ['unknown command "frobnicate"'] },
    { args: ['worker', '--bogus'], expect: ["'--bogus'"], spawn: true },
    { args: ['worker', 'extra'], expect: ['"extra"', 'takes no positional arguments'] },
    { args: ['worker', '--threads'], expect: ["'--threads"] },
    { args: ['worker', '--threads', 'abc'], expect: ['--threads', '"abc"'] },
    { args: ['worker', '--threads', '5000'], expect: ['--threads', 'from 0 to 1024', '"5000"'] },
    { args: ['worker', '--queue', 'bad queue!'], expect: ['--queue', '"bad queue!"'] },
    { args: ['worker', '--queue', 'a', '--queue', 'a:2'], expect: ['--queue', '"a"', 'given twice'] },
    { args: ['worker', '--queue', 'cpu:99999'], expect: ['--queue', '"cpu:99999"', 'from 0 to 1024'] },
    { args: ['worker', '--concurrency', '0'], expect: ['--concurrency', '"0"'] },
    { args: ['worker', '--batch-size', '0'], expect: ['--batch-size', '"0"'] },
    { args: ['worker', '--visibility-timeout', '500ms'], expect: ['--visibility-timeout', 'at least 1000ms', '"500ms"'] },
    { args: ['start', '--poll-interval', 'soon'], expect: ['--poll-interval', '"soon"'] },
    { args: ['worker', '--shutdown-timeout', 'soon'], expect: ['--shutdown-timeout', '"soon"'] },
    { args: ['scheduler', '--tick', '0'], expect: ['--tick', '"0"'] },
    { args: ['scheduler', '--retention', '3 weeks'], expect: ['--retention', '"3 weeks"'] },
    { args: ['scheduler', '--failed-retention', 'a month'], expect: ['--failed-retention', '"a month"'] },
    { args: ['worker', '--tasks', 'no-such-folder'], expect: ['--tasks', 'no-such-folder', 'does not exist'] },
    { args: ['worker', '--tasks', TASKS_DIR, '--only', 'echo,nope'], expect: ['--only', '"nope"', 'echo'], spawn: true },
    { args: ['worker', '--tasks', tsOnly], expect: ['--tasks', 'job.ts', 'dist/tasks'] },
    { args: ['start', '--tasks', TASKS_DIR, '--only', 'echo,,alpha'], expect: ['--only', 'empty name'] },
    { args: ['status', '--log-level', 'loud'], expect: ['--log-level', '"loud"'] },
    { args: ['status', '--schema', 'Bad-Name'], expect: ['--schema', '"Bad-Name"'] },
    { args: ['status', '--pool-size', '-1'], expect: ['--pool-size', '"-1"'] },
    { args: ['status', '--database-url', 'mysql://root:pw@db/x'], expect: ['--database-url', 'postgres://', '"mysql:"'] },
    { args: ['status', '--database-url', 'not a url'], expect: ['--database-url', 'not a valid URL'] },
    { args: ['status', '--interval', '1s'], expect: ['--interval', '--watch'] },
    { args: ['status', '--watch', '--interval', '10ms'], expect: ['--interval', '"10ms"'] },
    { args: ['status', '--window', 'forever'], expect: ['--window', '"forever"'] },
    { args: ['status', '--json=yes'], expect: ["'--json'", 'does not take an argument'] },
    { args: ['migrate', '--json'], expect: ['--json', '--status'] },
    { args: ['get'], expect: ['missing the execution id'] },
    { args: ['get', 'abc'], expect: ['invalid execution id "abc"'] },
    { args: ['cancel', '0'], expect: ['invalid execution id "0"'] },
    { args: ['get', '1', '2'], expect: ['unexpected extra argument "2"'] },
    { args: ['enqueue'], expect: ['missing the task name'] },
    { args: ['enqueue', 'echo', '1', '2'], expect: ['unexpected extra argument "2"'] },
    { args: ['enqueue', 'echo', '--queue', 'no spaces'], expect: ['--queue', '"no spaces"'] },
    { args: ['enqueue', 'echo', '--priority', 'high'], expect: ['--priority', '"high"'] },
    { args: ['enqueue', 'echo', '--priority', '1.5'], expect: ['--priority', '"1.5"'], spawn: true },
    { args: ['enqueue', 'echo', '--max-attempts', '0'], expect: ['--max-attempts', '"0"'] },
    { args: ['enqueue', 'echo', '--delay', '5 minutes'], expect: ['--delay', '"5 minutes"'] },
    { args: ['enqueue', 'echo', '--timeout', '0'], expect: ['--timeout', '"0"'] },
    { args: ['enqueue', 'echo', '--run-at', 'tomorrow'], expect: ['--run-at', '"tomorrow"'] },
    { args: ['enqueue', 'echo', '--delay', '1s', '--run-at', '2030-01-01T00:00:00Z'], expect: ['--delay', '--run-at'] },
    { args: ['enqueue', 'echo', '--wait-timeout', '5s'], expect: ['--wait-timeout', '--wait'] },
    // JSON payloads that do not parse: refused with the position (and line/column) of the error.
    { args: ['enqueue', 'echo', '{"a": 1,}'], expect: ['payload is not valid JSON', 'position 8', 'line 1, column 9', "'}'"] },
    { args: ['enqueue', 'echo', '{"a": 1 "b": 2}'], expect: ['position 8', "expected ',' or '}'"] },
    { args: ['enqueue', 'echo', "{'a': 1}"], expect: ['position 1', 'double quotes'] },
    { args: ['enqueue', 'echo', '[1, 2'], expect: ['position 5', 'the end of the input'] },
    { args: ['enqueue', 'echo', '{"n": 01}'], expect: ['position 7'] },
    { args: ['enqueue', 'echo', 'hello'], expect: ['position 0', '"hello"'] },
    { args: ['enqueue', 'echo', '{"a": 1} x'], expect: ['position 9', 'non-whitespace character after JSON'] },
    {
      args: ['enqueue', 'echo', '-'],
      stdin: '{\n  "ok": true,\n  "bad": tru\n}\n',
      expect: ['payload on stdin', 'position 25', 'line 3, column 10'],
      spawn: true,
    },
    // Environment variables and config files are named too.
    { args: ['worker'], env: { RHYTHM_THREADS: 'lots' }, expect: ['RHYTHM_THREADS', '"lots"'], spawn: true },
    { args: ['status'], env: { RHYTHM_POOL_SIZE: '0' }, expect: ['RHYTHM_POOL_SIZE', '"0"'] },
    { args: ['worker'], env: { RHYTHM_AUTO_MIGRATE: 'maybe' }, expect: ['RHYTHM_AUTO_MIGRATE', '"maybe"'] },
    { args: ['worker'], env: { RHYTHM_QUEUES: 'a,,b' }, expect: ['RHYTHM_QUEUES'] },
    { args: ['status'], env: { RHYTHM_SCHEMA: '1x' }, expect: ['RHYTHM_SCHEMA', '"1x"'] },
    { args: ['status', '--config', 'missing.json'], expect: ['--config', 'missing.json'], spawn: true },
    { args: ['status'], env: { RHYTHM_CONFIG: 'gone.json' }, expect: ['RHYTHM_CONFIG', 'gone.json'] },
  ];

  it(
    'refuses each mistake before connecting, naming what is wrong',
    async () => {
      const options = (c: Case) => ({ env: { RHYTHM_DATABASE_URL: REFUSED, ...c.env }, stdin: c.stdin });
      const [results, spawned] = await Promise.all([
        Promise.all(cases.map(async (c) => ({ c, r: await runInProcess(c.args, options(c)), how: 'in process' }))),
        inBatches(
          cases.filter((c) => c.spawn),
          async (c) => ({ c, r: await runCli(c.args, options(c)), how: 'spawned' }),
        ),
      ]);
      for (const { c, r, how } of [...results, ...spawned]) {
        const label = `rhythm ${c.args.join(' ')} ${JSON.stringify(c.env ?? {})} (${how})\n${r.stderr}`;
        // Soft: one run reports every case that fails.
        expect.soft(r.code, label).toBe(2);
        expect.soft(r.stdout, label).toBe('');
        for (const part of c.expect) {
          if (typeof part === 'string') expect.soft(r.stderr, label).toContain(part);
          else expect.soft(r.stderr, label).toMatch(part);
        }
        if (!c.args.includes('frobnicate') && c.args[0] !== undefined) expect.soft(r.stderr, label).toContain(`Run 'rhythm `);
        expect.soft(r.stderr, label).not.toContain('hunter2');
      }
    },
    SPAWNS_TIMEOUT_MS,
  );

  it('shows where in a multi-line payload the error is, with a caret under it', async () => {
    const r = await runInProcess(['enqueue', 'echo', '{"items": [1, 2,, 3]}'], { env: { RHYTHM_DATABASE_URL: REFUSED } });
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n');
    const i = lines.findIndex((l) => l.includes('{"items"'));
    expect(i).toBeGreaterThan(0);
    // The caret sits under the second comma (position 16).
    expect(lines[i + 1]!.indexOf('^') - lines[i]!.indexOf('{')).toBe(16);
  });

  it('refuses bad config files: invalid JSON with its position, unknown keys, bad values, several files', async () => {
    const bad = newDir('bad-json');
    writeFileSync(path.join(bad, 'rhythm.config.json'), '{\n  "schema": "x",\n  "threads": 2\n  "tasks": "t"\n}\n');
    const r1 = await runInProcess(['config'], { cwd: bad });
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain('rhythm.config.json is not valid JSON');
    expect(r1.stderr).toContain('line 4, column 3');

    const unknown = newDir('unknown-key');
    writeFileSync(path.join(unknown, 'rhythm.config.json'), JSON.stringify({ thread: 4 }));
    const r2 = await runInProcess(['config'], { cwd: unknown });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('unknown setting "thread"');

    const badValue = newDir('bad-value');
    writeFileSync(path.join(badValue, 'rhythm.config.json'), JSON.stringify({ threads: 'many' }));
    const r3 = await runInProcess(['worker'], { cwd: badValue });
    expect(r3.code).toBe(2);
    expect(r3.stderr).toContain('rhythm.config.json: "threads"');
    expect(r3.stderr).toContain('"many"');

    const badQueue = newDir('bad-queue');
    writeFileSync(path.join(badQueue, 'rhythm.config.json'), JSON.stringify({ queues: [{ name: 'q', threds: 2 }] }));
    const r4 = await runInProcess(['config'], { cwd: badQueue });
    expect(r4.code).toBe(2);
    expect(r4.stderr).toContain('unknown queue setting "threds"');

    const two = newDir('two-files');
    writeFileSync(path.join(two, 'rhythm.config.json'), '{}');
    writeFileSync(path.join(two, 'rhythm.config.mjs'), 'export default {};');
    const r5 = await runInProcess(['config'], { cwd: two });
    expect(r5.code).toBe(2);
    expect(r5.stderr).toContain('several config files');
  });

  it('explains what to do with rhythm.config.ts on a Node.js that cannot import TypeScript', async () => {
    const dir = newDir('ts-config');
    writeFileSync(
      path.join(dir, 'rhythm.config.ts'),
      'const config: { schema: string } = { schema: "from_ts" };\nexport default config;\n',
    );
    const r = await runCli(['config', '--json'], { cwd: dir });
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    const stripsTypes = major >= 24 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
    if (stripsTypes) {
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).schema.value).toBe('from_ts');
    } else {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('rhythm.config.ts');
      expect(r.stderr).toContain('cannot load a TypeScript config file');
      expect(r.stderr).toContain('rhythm.config.json');
    }
  });
});

describe('configuration precedence: flags > environment > config file > defaults', () => {
  it('takes each setting from the strongest source and says which', async () => {
    const dir = newDir('precedence');
    mkdirSync(path.join(dir, 'jobs'));
    writeFileSync(
      path.join(dir, 'rhythm.config.json'),
      JSON.stringify({
        databaseUrl: 'postgres://app:file-secret@db.internal:5432/app',
        schema: 'from_file',
        threads: 3,
        tasks: 'jobs',
        queues: ['default:2', { name: 'high-cpu', threads: 8, only: ['sha'] }],
        shutdownTimeout: '45s',
        logLevel: 'debug',
      }),
    );
    const config = async (args: string[], env: Record<string, string> = {}) => {
      const r = await runInProcess(['config', '--json', ...args], { cwd: dir, env });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Record<string, { value: unknown; source: string }> & { configFile: string };
    };

    const fileOnly = await config([]);
    expect(fileOnly.configFile).toBe(path.join(dir, 'rhythm.config.json'));
    expect(fileOnly.schema).toEqual({ value: 'from_file', source: `config ${path.join(dir, 'rhythm.config.json')}` });
    expect(fileOnly.threads!.value).toBe(3);
    expect(fileOnly.tasks!.value).toBe(path.join(dir, 'jobs')); // relative to the file
    expect(fileOnly.queues!.value).toEqual([
      { name: 'default', threads: 2 },
      { name: 'high-cpu', threads: 8, only: ['sha'] },
    ]);
    expect(fileOnly.shutdownTimeout!.value).toBe(45_000);
    expect(fileOnly.databaseUrl!.value).toBe('postgres://app:***@db.internal:5432/app');
    expect(fileOnly.retention).toEqual({ value: 7 * 86_400_000, source: 'default' });
    // A relative default is taken in the command's working folder, not the test's.
    expect(fileOnly.dataDir).toEqual({ value: path.join(dir, '.rhythm', 'pgdata'), source: 'default' });

    const env = {
      RHYTHM_SCHEMA: 'from_env',
      DATABASE_URL: 'postgres://u:env-secret@envhost/db',
      RHYTHM_THREADS: '5',
      RHYTHM_QUEUES: 'a,b:1',
    };
    const withEnv = await config([], env);
    expect(withEnv.schema).toEqual({ value: 'from_env', source: 'env RHYTHM_SCHEMA' });
    expect(withEnv.databaseUrl).toEqual({ value: 'postgres://u:***@envhost/db', source: 'env DATABASE_URL' });
    expect(withEnv.threads).toEqual({ value: 5, source: 'env RHYTHM_THREADS' });
    expect(withEnv.queues!.value).toEqual([{ name: 'a' }, { name: 'b', threads: 1 }]);
    expect(withEnv.tasks!.source).toContain('config'); // not overridden: still from the file

    // RHYTHM_DATABASE_URL wins over DATABASE_URL.
    const both = await config([], { ...env, RHYTHM_DATABASE_URL: 'postgres://r:rh-secret@rhhost/db' });
    expect(both.databaseUrl).toEqual({ value: 'postgres://r:***@rhhost/db', source: 'env RHYTHM_DATABASE_URL' });

    const withFlags = await config(
      [
        '--schema',
        'from_flag',
        '--threads',
        '0',
        '--queue',
        'x:4',
        '--queue',
        'y',
        '--database-url',
        'postgres://f:flag-secret@flaghost/db?sslpassword=pw2',
      ],
      env,
    );
    expect(withFlags.schema).toEqual({ value: 'from_flag', source: 'flag --schema' });
    expect(withFlags.threads).toEqual({ value: 0, source: 'flag --threads' });
    expect(withFlags.queues!.value).toEqual([{ name: 'x', threads: 4 }, { name: 'y' }]);
    expect(withFlags.databaseUrl!.value).toBe('postgres://f:***@flaghost/db?sslpassword=***');

    // An empty environment variable counts as unset.
    const empty = await config([], { RHYTHM_SCHEMA: '' });
    expect(empty.schema!.value).toBe('from_file');

    // No secret ever reaches the output.
    for (const r of [fileOnly, withEnv, both, withFlags]) {
      expect(JSON.stringify(r)).not.toMatch(/file-secret|env-secret|rh-secret|flag-secret|pw2/);
    }
  });

  it('reads a .mjs config file exporting a function, found through RHYTHM_CONFIG', async () => {
    const dir = newDir('mjs');
    writeFileSync(path.join(dir, 'settings.mjs'), 'export default async () => ({ schema: "from_mjs", queues: "q1:2,q2" });\n');
    const elsewhere = newDir('cwd');
    const r = await runInProcess(['config', '--json'], { cwd: elsewhere, env: { RHYTHM_CONFIG: path.join(dir, 'settings.mjs') } });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.schema.value).toBe('from_mjs');
    expect(out.queues.value).toEqual([{ name: 'q1', threads: 2 }, { name: 'q2' }]);
    expect(out.configFile).toBe(path.join(dir, 'settings.mjs'));
  });

  it('prints the effective configuration at info level on stderr, secrets masked', async () => {
    const r = await runInProcess(['config', '--log-level', 'info', '--database-url', 'postgres://me:topsecret@h/db']);
    expect(r.code).toBe(0);
    const entry = r.logs.find((l) => l.msg === 'effective configuration');
    expect(entry).toBeDefined();
    expect((entry!.config as Record<string, { value: unknown }>).databaseUrl!.value).toBe('postgres://me:***@h/db');
    expect(r.stderr).not.toContain('topsecret');
    // Quiet at the default level of one-shot commands.
    const quiet = await runInProcess(['config']);
    expect(quiet.logs.find((l) => l.msg === 'effective configuration')).toBeUndefined();
  });
});

describe('runtime errors: exit code 1', () => {
  it('reports an unreachable database with its password masked', async () => {
    const r = await runCli(['status', '--database-url', REFUSED]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot use the database postgres://someone:***@127.0.0.1:1/nowhere');
    expect(r.stderr).not.toContain('hunter2');
  });

  it('takes a negative number as the value of a flag (--priority -5), so the command gets as far as the database', async () => {
    const r = await runInProcess(['enqueue', 'echo', '--priority', '-5', '--database-url', REFUSED]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('cannot use the database');
  });

  it('reports a task module that fails to load', async () => {
    const dir = newDir('broken-tasks');
    writeFileSync(path.join(dir, 'ok.js'), 'export default () => 1;\n');
    writeFileSync(path.join(dir, 'broken.js'), 'export default () => {;\n');
    const r = await runCli(['worker', '--tasks', dir], { env: { RHYTHM_DATABASE_URL: REFUSED } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken.js failed to load');
  });

  it('reports a task module without a handler, and two modules with one name', async () => {
    const dir = newDir('no-handler');
    writeFileSync(path.join(dir, 'a.js'), 'export const x = 1;\n');
    const r = await runInProcess(['worker', '--tasks', dir], { env: { RHYTHM_DATABASE_URL: REFUSED } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has no handler');

    const twins = newDir('twins');
    writeFileSync(path.join(twins, 'a.js'), 'export default () => 1;\n');
    writeFileSync(path.join(twins, 'b.js'), 'export const name = "a";\nexport default () => 2;\n');
    const r2 = await runInProcess(['worker', '--tasks', twins], { env: { RHYTHM_DATABASE_URL: REFUSED } });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('task name "a" is used by both');
  });
});
