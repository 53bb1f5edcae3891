/**
 * The dashboard's static files: its own page, script and style (copied next to the compiled
 * module by the build), and Chart.js served from its installed package, so the page needs no
 * network beyond the dashboard itself. Read once, on first use.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RhythmError } from '../errors.js';

export interface Asset {
  type: string;
  body: Buffer;
}

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

const FILES: Record<string, { file: () => string; type: string }> = {
  'index.html': { file: () => path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  'app.js': { file: () => path.join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: () => path.join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  // The package's exports name only its entry points; its UMD build sits beside the CommonJS one.
  'chart.umd.min.js': {
    file: () => path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

const cache = new Map<string, Asset>();

/** The named asset, or undefined if there is none by that name. */
export function asset(name: string): Asset | undefined {
  const def = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
  if (!def) return undefined;
  let a = cache.get(name);
  if (!a) {
    const file = def.file();
    if (!existsSync(file))
      throw new RhythmError(`dashboard asset ${name} is missing at ${file} (build with \`npm run build\`, which copies the assets)`);
    a = { type: def.type, body: readFileSync(file) };
    cache.set(name, a);
  }
  return a;
}

/** Fails early (at start) rather than on the first page view when an asset is missing. */
export function checkAssets(): void {
  for (const name of Object.keys(FILES)) asset(name);
}
