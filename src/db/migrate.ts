/**
 * Applies migrations/*.sql in order, each once, recorded in <schema>.migrations.
 * One transaction under a transaction-scoped advisory lock: ten processes starting at once
 * queue on the lock, and all but the first find nothing left to do.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { SchemaNames } from './schema.js';
import { inTransaction } from './transaction.js';
import { packageUrl } from '../package-root.js';

const MIGRATIONS_DIR = fileURLToPath(packageUrl('migrations/'));
const FILE_NAME = /^(\d+)_[\w-]+\.sql$/;

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export interface MigrationStatus {
  id: number;
  name: string;
  appliedAt: Date | null;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const m = FILE_NAME.exec(file);
    if (!m) throw new Error(`migration file name ${file} must look like 001_description.sql`);
    migrations.push({ id: Number(m[1]), name: file, sql: await readFile(`${dir}/${file}`, 'utf8') });
  }
  return migrations;
}

/** Applies pending migrations; returns the names it applied (empty if up to date). */
export async function migrate(pool: pg.Pool, names: SchemaNames): Promise<string[]> {
  const migrations = await loadMigrations();
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`rhythm:migrate:${names.schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${names.schema}"`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${names.migrations} (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ id: number }>(`SELECT id FROM ${names.migrations}`);
    const applied = new Set(rows.map((r) => r.id));
    const done: string[] = [];
    await client.query(`SET LOCAL search_path TO "${names.schema}"`);
    for (const m of migrations) {
      if (applied.has(m.id)) continue;
      await client.query(m.sql);
      await client.query(`INSERT INTO ${names.migrations} (id, name) VALUES ($1, $2)`, [m.id, m.name]);
      done.push(m.name);
    }
    return done;
  });
}

/** Every known migration with the time it was applied, or null if pending. */
export async function migrationStatus(pool: pg.Pool, names: SchemaNames): Promise<MigrationStatus[]> {
  const migrations = await loadMigrations();
  const { rows } = await pool.query<{ n: string | null }>('SELECT to_regclass($1) AS n', [names.migrations]);
  const applied = new Map<number, Date>();
  if (rows[0]?.n) {
    const res = await pool.query<{ id: number; applied_at: Date }>(`SELECT id, applied_at FROM ${names.migrations}`);
    for (const r of res.rows) applied.set(r.id, r.applied_at);
  }
  return migrations.map((m) => ({ id: m.id, name: m.name, appliedAt: applied.get(m.id) ?? null }));
}
