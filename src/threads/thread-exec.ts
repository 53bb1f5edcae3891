/**
 * How a thread pool's threads are started: which Node flags they get and whether they can
 * import TypeScript. A thread is a fresh module loader: on Node 20 the loader hooks a program
 * registered for itself (`tsx`'s `--import tsx`, for one) do not reach it, so a `.ts` task
 * module, or this package's own runner when it runs from source, would not load there. When
 * a thread needs TypeScript and tsx can be found, each thread registers tsx's hooks itself
 * before anything else is imported.
 */
import { Worker as NodeWorker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPESCRIPT = /\.[cm]?tsx?$/i;

/** True for a module Node cannot import without a TypeScript loader. */
export function isTypeScript(url: string): boolean {
  return TYPESCRIPT.test(new URL(url).pathname);
}

/**
 * The file: URL of tsx's ESM register API, found from the program's folder first (where an
 * app installs it) and then from this package's; undefined when tsx is not installed.
 */
export function findTsx(): string | undefined {
  for (const from of [path.join(process.cwd(), 'noop.js'), import.meta.url]) {
    try {
      // require.resolve finds the CommonJS build of the API, which registers the hooks by a
      // path relative to the importer and fails from a preload; its ES module sibling works.
      const cjs = createRequire(from).resolve('tsx/esm/api');
      const esm = cjs.replace(/\.cjs$/, '.mjs');
      return pathToFileURL(existsSync(esm) ? esm : cjs).href;
    } catch {
      // not installed here: try the next place
    }
  }
  return undefined;
}

/** A `--import` value that registers tsx's hooks in the thread it runs in. */
export function tsxPreload(apiUrl: string): string {
  const code = `import { register } from ${JSON.stringify(apiUrl)}; register();`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

let workerSafe: { argv: readonly string[]; safe: string[] } | undefined;

/**
 * The flags of this process that a thread accepts. Node lets a thread inherit the process's
 * flags silently, but refuses an explicit list holding process-wide ones (--max-old-space-size,
 * --title, --expose-gc, ...): asking Node which ones it refuses is the only list that matches
 * the running version.
 */
export function workerSafeExecArgv(argv: readonly string[] = process.execArgv): string[] {
  if (workerSafe?.argv === argv) return workerSafe.safe;
  let safe = [...argv];
  try {
    const probe = new NodeWorker('', { eval: true, execArgv: safe });
    void probe.terminate();
  } catch (err) {
    const refused = /flags: (.*)$/.exec((err as Error).message)?.[1]?.split(/,\s*/) ?? [];
    if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || refused.length === 0) throw err;
    // A refused flag written as two words (`--title name`) leaves its value behind as the
    // next word: execArgv holds only Node's own options, so a word without a dash is a value.
    safe = safe.filter((flag, i) => !refused.includes(flag) && !(i > 0 && !flag.startsWith('-') && refused.includes(safe[i - 1]!)));
  }
  workerSafe = { argv, safe };
  return safe;
}

/**
 * The execArgv for a pool's threads: the caller's own list when given (used as is), else this
 * process's flags that threads accept; plus the tsx preload when `typescript` and tsx is found.
 * Undefined means "inherit", Node's default, when nothing needs adding.
 */
export function threadExecArgv(given: readonly string[] | undefined, typescript: boolean): string[] | undefined {
  const tsx = typescript ? findTsx() : undefined;
  if (given === undefined && tsx === undefined) return undefined;
  const argv = given !== undefined ? [...given] : workerSafeExecArgv();
  if (tsx !== undefined) argv.push('--import', tsxPreload(tsx));
  return argv;
}
