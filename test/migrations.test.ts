/**
 * Migrations: applied in order under an advisory lock and recorded in <schema>.migrations,
 * so that ten processes starting at once (ten Rhythm.init, each with its own connection
 * pool) migrate exactly once and none of them fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { Rhythm } from 'rhythm';
import { createTestDatabase } from './support/db.js';
import type { TestDatabase } from './helpers.js';

const MIGRATION_FILES = readdirSync(new URL('../migrations/', import.meta.url))
  .filter((f) => f.endsWith('.sql'))
  .sort();
const MIGRATION_IDS = MIGRATION_FILES.map((f) => Number(/^(\d+)_/.exec(f)![1]));

let db: TestDatabase;
let admin: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

async function migrationRows(schema: string): Promise<{ id: number; name: string; applied_at: Date }[]> {
  const res = await admin.query(`SELECT id, name, applied_at FROM "${schema}".migrations ORDER BY id`);
  return res.rows;
}

async function initMany(n: number, schema: string): Promise<Rhythm[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => Rhythm.init({ databaseUrl: db.url, schema, poolSize: 2 })));
  const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
  try {
    expect(failed).toEqual([]);
  } finally {
    if (failed.length > 0) await Promise.all(ok.map((r) => r.shutdown()));
  }
  return ok;
}

describe('migrations', () => {
  it('has migration files to apply', () => {
    expect(MIGRATION_FILES.length).toBeGreaterThan(0);
    expect(new Set(MIGRATION_IDS).size).toBe(MIGRATION_IDS.length);
  });

  it('ten concurrent Rhythm.init on a fresh schema all succeed and record each migration exactly once', async () => {
    const instances = await initMany(10, 'concurrent');
    try {
      const rows = await migrationRows('concurrent');
      expect(rows.map((r) => r.id)).toEqual(MIGRATION_IDS);
      expect(rows.map((r) => r.name)).toEqual(MIGRATION_FILES);

      // The schema is usable: every table the runtime needs exists, and a task round-trips.
      const tables = await admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'concurrent' ORDER BY 1");
      expect(tables.rows.map((t) => t.table_name)).toEqual(
        expect.arrayContaining(['executions', 'migrations', 'scheduled_queue', 'work_queue']),
      );
      const r = instances[3]!;
      const id = await r.enqueue('t', { ok: true });
      expect(await instances[7]!.get(id)).toMatchObject({ id, status: 'queued', payload: { ok: true } });

      const status = await r.migrationStatus();
      expect(status.map((s) => s.id)).toEqual(MIGRATION_IDS);
      for (const s of status) expect(s.appliedAt).toBeInstanceOf(Date);
    } finally {
      await Promise.all(instances.map((r) => r.shutdown()));
    }
  });

  it('a second wave of concurrent inits finds nothing to do and changes nothing', async () => {
    const before = await migrationRows('concurrent');
    const instances = await initMany(10, 'concurrent');
    await Promise.all(instances.map((r) => r.shutdown()));
    expect(await migrationRows('concurrent')).toEqual(before);
  });

  it('two schemas in one database migrate concurrently and independently', async () => {
    const instances = (await Promise.all(['tenant_a', 'tenant_b', 'tenant_c'].map((schema) => initMany(4, schema)))).flat();
    try {
      expect(instances).toHaveLength(12);
      for (const schema of ['tenant_a', 'tenant_b', 'tenant_c'])
        expect((await migrationRows(schema)).map((r) => r.id)).toEqual(MIGRATION_IDS);
      // Separate data: a task in one schema is not visible in another.
      const a = instances[0]!;
      const b = instances[instances.length - 1]!;
      const id = await a.enqueue('t', {});
      expect(await a.get(id)).not.toBeNull();
      const inB = await b.pool.query(`SELECT count(*)::int AS n FROM ${b.names.executions}`);
      expect(inB.rows[0].n).toBe(0);
    } finally {
      await Promise.all(instances.map((r) => r.shutdown()));
    }
  });

  it('autoMigrate: false leaves a new schema untouched, and migrationStatus reports every migration pending', async () => {
    const r = await Rhythm.init({ databaseUrl: db.url, schema: 'not_migrated', autoMigrate: false });
    try {
      const schemas = await admin.query("SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = 'not_migrated'");
      expect(schemas.rows[0].n).toBe(0);
      const status = await r.migrationStatus();
      expect(status.map((s) => s.id)).toEqual(MIGRATION_IDS);
      for (const s of status) expect(s.appliedAt).toBeNull();
    } finally {
      await r.shutdown();
    }
  });
});
