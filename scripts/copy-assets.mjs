// Copies what tsc does not emit (the dashboard's page, script and style) next to the compiled
// modules, so the built package finds them relative to itself wherever it is installed.
import { cpSync } from 'node:fs';

cpSync(new URL('../src/dashboard/public/', import.meta.url), new URL('../dist/src/dashboard/public/', import.meta.url), {
  recursive: true,
});
