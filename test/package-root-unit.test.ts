/**
 * The package finds its own files (package.json, migrations/, workflows/) by walking up to its
 * package.json, from src/ (these tests) as from dist/src/ (the build, checked by the CLI tests
 * and the scratch app): no path counts `../` from where the code happens to run.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { packageRootPath, packageUrl, packageVersion } from '../src/package-root.js';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

describe('packageRoot', () => {
  it('is the folder of the rhythm-pg package.json, with its version', () => {
    expect(packageRootPath()).toBe(REPO);
    expect(packageVersion()).toBe(JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')).version);
  });

  it('resolves the folders the code reads at run time', () => {
    for (const dir of ['migrations/', 'workflows/']) expect(existsSync(fileURLToPath(packageUrl(dir))), dir).toBe(true);
    expect(packageUrl('migrations/').href.endsWith('/migrations/')).toBe(true);
  });
});
