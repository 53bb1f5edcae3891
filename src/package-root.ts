/**
 * Where this package's own files are (package.json, migrations/, workflows/). The code runs
 * from src/ (tests, tsx) and from dist/src/ (built, installed), at different depths, so
 * instead of counting `../` it walks up to the nearest package.json naming this package.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const NAME = 'rhythm-pg';
let root: string | undefined;

/** The package's root folder (holding its package.json), as a path. */
export function packageRootPath(): string {
  if (root !== undefined) return root;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === NAME) return (root = dir);
    if (dirname(dir) === dir) throw new Error(`cannot find the ${NAME} package.json above ${start}`);
  }
}

/** A file or folder of the package (a folder's path ends with "/"), as a file: URL. */
export function packageUrl(relative: string): URL {
  return new URL(relative, pathToFileURL(`${packageRootPath()}/`));
}

/** The package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('package.json', packageUrl('./')), 'utf8')) as { version: string }).version;
}
