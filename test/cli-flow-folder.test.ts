/**
 * `rhythm worker` serving the *.flow files of its tasks folder as workflows, next to the task
 * modules they call: `rhythm start-workflow` (another process) starts one on each queue the
 * worker serves and the worker completes it. A .flow file that does not compile stops the start
 * with every problem as file:line:col and exit code 2; --only picks workflows as it picks tasks.
 * The checks of a start that stops before serving run in this process (runInProcess: runCli with
 * its own streams), one of them also as the shipped executable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rhythm, type Execution } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import { runCli, runInProcess, spawnCli, killAll, newDir, removeScratch } from './fixtures/cli-tasks/harness/cli.js';

const FOLDER = fileURLToPath(new URL('./fixtures/cli-flows/', import.meta.url));
const REFUSED = 'postgres://someone:hunter2@127.0.0.1:1/nowhere';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Rhythm;
let conn: string[];

beforeAll(async () => {
  db = await createTestDatabase('rhythm_cli_flow_folder');
  conn = ['--database-url', db.url, '--schema', 'cff'];
  r = await Rhythm.init({ databaseUrl: db.url, schema: 'cff' });
});

afterAll(async () => {
  await killAll();
  await r?.shutdown({ timeoutMs: 1_000 });
  await db?.drop();
  removeScratch();
});

describe('rhythm worker with .flow files in --tasks', () => {
  it("serves the folder's workflows on every queue it serves; start-workflow runs them to completion", async () => {
    const worker = spawnCli(['worker', ...conn, '--tasks', FOLDER, '--queue', 'default:1', '--queue', 'io:0', '--poll-interval', '200ms']);
    const plan = await worker.waitForLog('task plan');
    expect(plan.queues).toEqual([
      { queue: 'default', runsOn: '1 thread', tasks: ['shout'], workflows: ['greet'] },
      { queue: 'io', runsOn: 'main thread', tasks: ['shout'], workflows: ['greet'] },
    ]);
    // Each queue's worker stores its workflow sources before it logs this.
    await worker.waitForLog('worker started', (e) => e.queue === 'io' && String(e.workflows) === 'greet');
    await worker.waitForLog('worker started', (e) => e.queue === 'default' && String(e.workflows) === 'greet');

    const [waited, started] = await Promise.all([
      runCli(['start-workflow', ...conn, 'greet', '{"name": "ana"}', '--wait', '--json', '--wait-timeout', '30s']),
      runInProcess(['start-workflow', ...conn, 'greet', '{"name": "bo"}', '--queue', 'io']),
    ]);
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout) as Execution).toMatchObject({
      kind: 'workflow',
      name: 'greet',
      queue: 'default',
      status: 'completed',
      result: { greeting: 'HELLO ANA!', ranOn: 'worker', queue: 'default' },
    });

    expect(started.code, started.stderr).toBe(0);
    const done = await r.wait(started.stdout.trim(), { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'completed', queue: 'io', result: { greeting: 'HELLO BO!', ranOn: 'main', queue: 'io' } });

    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('a .flow file that does not compile stops the start with its locations (exit 2), before connecting', async () => {
    const dir = newDir('broken-flows');
    writeFileSync(path.join(dir, 'ok.js'), 'export default () => 1;\n');
    writeFileSync(path.join(dir, 'fine.flow'), 'return await Task.run("ok", {});\n');
    writeFileSync(path.join(dir, 'broken.flow'), 'const a = 1;\nconst b = ;\n');
    writeFileSync(path.join(dir, 'classy.flow'), 'const a = 1;\nclass X {}\n');
    const results = await Promise.all([
      runCli(['worker', '--tasks', dir, '--database-url', REFUSED]),
      runInProcess(['start', '--tasks', dir, '--database-url', REFUSED]),
    ]);
    for (const res of results) {
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain('2 workflows do not compile');
      expect(res.stderr).toContain(`${path.join(dir, 'broken.flow')}:2:11: Unexpected token`);
      expect(res.stderr).toContain(`${path.join(dir, 'classy.flow')}:2:1: classes are not supported`);
      expect(res.stderr).not.toContain('cannot use the database');
    }
  });

  it('--only picks workflows like tasks; a folder of .flow files alone is enough; a name used twice is refused', async () => {
    const flowsOnly = newDir('flows-only');
    writeFileSync(path.join(flowsOnly, 'solo.flow'), 'return 1;\n');
    const twins = newDir('flow-twins');
    writeFileSync(path.join(twins, 'a.js'), 'export default () => 1;\n');
    writeFileSync(path.join(twins, 'a.flow'), 'return 1;\n');
    const [only, unknown, solo, twin] = await Promise.all([
      runInProcess(['worker', '--tasks', FOLDER, '--only', 'shout', '--threads', '0', '--database-url', REFUSED]),
      runInProcess(['worker', '--tasks', FOLDER, '--only', 'greet,nope', '--database-url', REFUSED]),
      runInProcess(['worker', '--tasks', flowsOnly, '--database-url', REFUSED]),
      runInProcess(['worker', '--tasks', twins, '--database-url', REFUSED]),
    ]);
    expect(only.code).toBe(1); // got as far as the database
    expect(only.logs.find((e) => e.msg === 'task plan')?.queues).toEqual([
      { queue: 'default', runsOn: 'main thread', tasks: ['shout'], workflows: [] },
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no task or workflow named "nope" in .* \(found: shout, greet\)/);

    expect(solo.code, solo.stderr).toBe(1);
    expect(solo.logs.find((e) => e.msg === 'task plan')?.queues).toMatchObject([{ queue: 'default', tasks: [], workflows: ['solo'] }]);
    expect(solo.stderr).toContain('cannot use the database');

    expect(twin.code).toBe(1);
    expect(twin.stderr).toContain(
      `name "a" is used by both task module ${path.join(twins, 'a.js')} and workflow ${path.join(twins, 'a.flow')}`,
    );
  });
});
