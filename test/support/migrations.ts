/** The migration files the package ships, in order: tests that apply them all expect exactly these. */
import { readdirSync } from 'node:fs';

export const MIGRATION_FILES: string[] = readdirSync(new URL('../../migrations/', import.meta.url))
  .filter((f) => f.endsWith('.sql'))
  .sort();
