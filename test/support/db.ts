/** A database of its own for each test file, on the run's shared server. */
import { inject } from 'vitest';
import pg from 'pg';

export interface TestDatabaseHandle {
  url: string;
  drop(): Promise<void>;
}

async function create(prefix: string, template: string | undefined): Promise<TestDatabaseHandle> {
  const adminUrl = inject('databaseUrl');
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(template ? `CREATE DATABASE "${name}" TEMPLATE "${template}"` : `CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** An empty database. */
export function createTestDatabase(prefix = 'rhythm_test'): Promise<TestDatabaseHandle> {
  return create(prefix, undefined);
}

/**
 * A database with the default schema already migrated (a copy of the run's template): for
 * files that test what runs on the schema, not how it gets made. Rhythm.init's own migrate
 * then finds nothing to do.
 */
export function createMigratedTestDatabase(prefix = 'rhythm_test'): Promise<TestDatabaseHandle> {
  return create(prefix, inject('migratedTemplate'));
}
