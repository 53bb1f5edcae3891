/**
 * Workflows under contention, with two worker instances (two pools, as two processes would
 * have) on one queue: children settling while their parent suspends, signals sent while the
 * workflow suspends, races of children, and cancellations landing while activations start new
 * children. No wake-up may be lost (every workflow finishes) and no descendant of a cancelled
 * workflow may be left unfinished.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rhythm, Worker } from 'rhythm';
import { freshRhythm, type TestDatabase } from './helpers.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rhythm-flow-races-'));
const flows: Record<string, string> = {
  fan: `
    const xs = await Promise.all(Inputs.map(i => Task.run("jitter", { i })));
    const go = await Signal.next("go");
    return xs.length + go;
  `,
  first: `
    const w = await Promise.race([Task.run("jitter", { i: 1 }), Task.run("jitter", { i: 2 })]);
    return w.i;
  `,
  spawner: `
    for (let i = 0; i < 6; i++) {
      Workflow.run("forever", { i });
      await Task.run("jitter", { i });
    }
    return "done";
  `,
  forever: `
    await Signal.next("never");
    return 0;
  `,
};
for (const [name, source] of Object.entries(flows)) writeFileSync(path.join(tmp, `${name}.flow`), source);

let db: TestDatabase;
let r: Rhythm;
let r2: Rhythm;
const running: Promise<void>[] = [];
const ran = new Map<string, number>();
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

function serve(app: Rhythm, id: string): void {
  const w = new Worker(app, { queue: 'race', workerId: id, pollIntervalMs: 200 });
  w.task('jitter', async (p: { i: number }) => {
    ran.set(id, (ran.get(id) ?? 0) + 1);
    await sleep(Math.random() * 5);
    return p;
  });
  w.workflows(tmp);
  running.push(w.start());
}

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  r2 = await Rhythm.init({ databaseUrl: db.url });
  serve(r, 'one');
  serve(r2, 'two');
});
afterAll(async () => {
  await r2?.shutdown();
  await r?.shutdown();
  await Promise.all(running);
  await db?.drop();
});

describe('contention', () => {
  it('loses no wake-up: children, signals and races settling while workflows suspend', async () => {
    const fans = await Promise.all(Array.from({ length: 120 }, () => r.startWorkflow('fan', [1, 2, 3, 4, 5, 6], { queue: 'race' })));
    const firsts = await Promise.all(Array.from({ length: 60 }, () => r2.startWorkflow('first', null, { queue: 'race' })));
    // Signals at random moments: before, during and after the fan-out.
    await Promise.all(
      fans.map(async (id, i) => {
        await sleep(Math.random() * 300);
        await (i % 2 ? r : r2).signal(id, 'go', 10);
      }),
    );
    const done = await Promise.all([...fans, ...firsts].map((id) => r.wait(id, { timeoutMs: 40_000 })));
    expect(done.slice(0, fans.length).map((d) => d.result)).toEqual(fans.map(() => 16));
    for (const d of done.slice(fans.length)) expect([1, 2]).toContain(d.result);
    // Both instances took part.
    expect(ran.get('one')).toBeGreaterThan(0);
    expect(ran.get('two')).toBeGreaterThan(0);
  });

  it('cancels every descendant even while activations are starting children', async () => {
    const roots = await Promise.all(Array.from({ length: 30 }, () => r.startWorkflow('spawner', null, { queue: 'race' })));
    await Promise.all(
      roots.map(async (id, i) => {
        await sleep(Math.random() * 200);
        await (i % 2 ? r : r2).cancel(id);
      }),
    );
    const left = await r.pool.query(
      `WITH RECURSIVE tree AS (
         SELECT id FROM ${r.names.executions} WHERE id = ANY ($1::bigint[])
         UNION ALL SELECT c.id FROM ${r.names.executions} c JOIN tree t ON c.parent_id = t.id)
       SELECT e.id, e.kind, e.name, e.status FROM ${r.names.executions} e JOIN tree USING (id)
       WHERE e.status NOT IN ('completed', 'failed', 'cancelled')`,
      [roots],
    );
    expect(left.rows).toEqual([]);
    const spawned = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.executions} WHERE name = 'forever'`);
    expect(spawned.rows[0].n).toBeGreaterThan(0);
  });
});
