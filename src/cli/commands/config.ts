/** `rhythm config`: the effective configuration and where each value came from; connects to nothing. */
import { Option } from 'commander';
import { SETTING_KEYS } from '../../config/settings.js';
import { describeSettings } from '../../config/describe.js';
import { table } from '../output.js';
import { ONE_SHOT_DEFAULTS, type Command } from '../command.js';

export const configCommand: Command = {
  name: 'config',
  summary: 'print the effective configuration and where each value came from',
  description: `Prints the effective configuration of a worker started with the same flags, environment and config file, and where each value came from. Secrets are masked. Connects to nothing.

Config file: rhythm.config.json (or .mjs/.js/.cjs exporting the object as default, or a function returning it), holding settings under these keys: ${SETTING_KEYS.join(', ')}. "queues" may list "name:threads" strings or { "name", "threads", "only" } objects. Paths are relative to the file. rhythm.config.ts needs a Node.js that can import TypeScript (22.18+ / 23.6+, or a loader such as NODE_OPTIONS="--import tsx"); on Node 20 use .json or .mjs.`,
  settings: SETTING_KEYS,
  defaults: { logLevel: ONE_SHOT_DEFAULTS.logLevel },
  options: [new Option('--json', 'print JSON')],
  async run(ctx) {
    const described = describeSettings(ctx.resolved, SETTING_KEYS);
    if (ctx.options.json) {
      await ctx.print(JSON.stringify(described));
      return 0;
    }
    const rows = SETTING_KEYS.map((k) => {
      const d = described[k] as { value: unknown; source: string };
      return [k, typeof d.value === 'string' ? d.value : JSON.stringify(d.value), d.source];
    });
    const file = ctx.resolved.file ? `config file: ${ctx.resolved.file.path}` : 'config file: none';
    await ctx.print(`${table(['SETTING', 'VALUE', 'FROM'], rows)}\n${file}`);
    return 0;
  },
};
