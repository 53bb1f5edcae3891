/**
 * The setting definitions and their parsers, without a database or a process: every setting
 * has a flag, variables and a help line; parsers take good values and refuse bad ones naming
 * where they came from; precedence is flag > environment > config file > default; JSON errors
 * are located at the right line and column.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { SETTINGS, SETTING_KEYS, flagName, type SettingDef } from '../src/config/settings.js';
import { parseDuration, formatDuration, parseBool, parseChoice, parseInteger, parseList, parseQueues } from '../src/config/parse.js';
import { fromEnvironment, resolveSettings } from '../src/config/resolve.js';
import { locateJsonError, parseJsonText } from '../src/config/json-text.js';
import { checkInt } from '../src/validate.js';
import { RhythmError, RhythmValidationError } from '../src/errors.js';
import { CliError, UsageError } from '../src/cli/errors.js';

describe('setting definitions', () => {
  it('give every setting a flag, environment variables, a help line and a default that parses', () => {
    const flags = new Set<string>();
    const vars = new Set<string>();
    for (const key of SETTING_KEYS) {
      const def = SETTINGS[key] as SettingDef<unknown>;
      expect(def.flag, key).toMatch(/^--[a-z][a-z-]*( <[^>]+>)?$/);
      expect(flags.has(flagName(key)), `${key}: flag used twice`).toBe(false);
      flags.add(flagName(key));
      expect(def.env.length, key).toBeGreaterThan(0);
      for (const v of def.env) {
        expect(v, key).toMatch(/^[A-Z][A-Z_]*$/);
        expect(vars.has(v), `${key}: ${v} used twice`).toBe(false);
        vars.add(v);
      }
      expect(def.help.length, key).toBeGreaterThan(10);
      // A switch sets a value; a flag with a value says what it takes.
      expect(def.switchSets !== undefined || def.flag.includes('<'), key).toBe(true);
      def.default(); // does not throw
    }
  });

  it('parse each setting from text as a flag or variable gives it, and refuse nonsense naming the source', () => {
    const good: Record<string, [string, unknown]> = {
      databaseUrl: ['postgres://u:p@h/db', 'postgres://u:p@h/db'],
      dataDir: ['data', 'data'],
      schema: ['app_1', 'app_1'],
      poolSize: ['7', 7],
      dbTimeout: ['2s', 2_000],
      logLevel: ['DEBUG', 'debug'],
      logFormat: ['json', 'json'],
      queues: ['a,b:4', [{ name: 'a' }, { name: 'b', threads: 4 }]],
      threads: ['0', 0],
      tasks: ['dist/tasks', 'dist/tasks'],
      only: ['x, y', ['x', 'y']],
      concurrency: ['64', 64],
      batchSize: ['500', 500],
      leasePoolSize: ['4', 4],
      visibilityTimeout: ['1m', 60_000],
      pollInterval: ['250ms', 250],
      shutdownTimeout: ['0', 0],
      autoMigrate: ['off', false],
      internalWorker: ['yes', true],
      tick: ['1s', 1_000],
      retention: ['90d', 90 * 86_400_000],
      failedRetention: ['30d', 30 * 86_400_000],
      metricsPort: ['9464', 9464],
      metricsHost: ['0.0.0.0', '0.0.0.0'],
      dashboardPort: ['9000', 9000],
      dashboardHost: ['[::1]', '::1'],
      dashboardToken: ['0123456789abcdef-token', '0123456789abcdef-token'],
    };
    expect(Object.keys(good).sort()).toEqual([...SETTING_KEYS].sort());
    for (const key of SETTING_KEYS) {
      const def = SETTINGS[key] as SettingDef<unknown>;
      expect(def.parse(good[key]![0], 'X', 'env'), key).toEqual(good[key]![1]);
      if (key === 'dataDir' || key === 'tasks') continue; // any non-empty text is a path
      const bad = key === 'only' || key === 'queues' ? 'a,,b' : 'not valid!';
      expect(() => def.parse(bad, 'RHYTHM_SOMETHING', 'env'), key).toThrow(RhythmValidationError);
      expect(() => def.parse(bad, 'RHYTHM_SOMETHING', 'env'), key).toThrow(/RHYTHM_SOMETHING/);
    }
  });
});

describe('value parsers', () => {
  it('durations: units, bare milliseconds, minimum, maximum', () => {
    expect(parseDuration('--d', '500ms')).toBe(500);
    expect(parseDuration('--d', '1.5s')).toBe(1_500);
    expect(parseDuration('--d', ' 5m ')).toBe(300_000);
    expect(parseDuration('--d', '2h')).toBe(7_200_000);
    expect(parseDuration('--d', '250')).toBe(250);
    expect(parseDuration('--d', 42)).toBe(42);
    for (const bad of ['soon', '5 minutes', '-1s', '1w', '', '1e3']) {
      expect(() => parseDuration('--d', bad), bad).toThrow(`--d must be a duration such as 500ms`);
    }
    expect(() => parseDuration('--d', '500ms', 1_000)).toThrow('--d must be at least 1000ms, got "500ms"');
    expect(() => parseDuration('--d', '30d')).toThrow('--d is too long');
    expect(formatDuration(950)).toBe('950ms');
    expect(formatDuration(61_000)).toBe('1m 1s');
    expect(formatDuration(90_061_000)).toBe('1d 1h');
  });

  it('integers: one check for options (numbers) and for text (flags, variables)', () => {
    expect(parseInteger('--n', ' 12 ', 1)).toBe(12);
    expect(parseInteger('--n', '-5', -10)).toBe(-5);
    expect(parseInteger('--n', 7, 1)).toBe(7);
    expect(() => parseInteger('--n', '1.5', 1)).toThrow('--n must be an integer >= 1, got "1.5"');
    expect(() => parseInteger('--n', '5000', 0, 1024)).toThrow('--n must be an integer from 0 to 1024, got "5000"');
    expect(() => parseInteger('--n', '', 0)).toThrow(RhythmValidationError);
    // Library options take numbers only: "10" is a mistake there, not a number.
    expect(checkInt('poolSize', 10, 1)).toBe(10);
    expect(checkInt('poolSize', undefined, 1)).toBeUndefined();
    expect(() => checkInt('poolSize', '10', 1)).toThrow('option poolSize must be an integer >= 1, got "10"');
    expect(() => checkInt('poolSize', 2 ** 40, 1)).toThrow('option poolSize must be an integer from 1 to 2147483647');
  });

  it('booleans, choices, lists and queues', () => {
    expect(parseBool('B', 'ON')).toBe(true);
    expect(parseBool('B', '0')).toBe(false);
    expect(() => parseBool('B', 'maybe')).toThrow('B must be true or false, got "maybe"');
    expect(parseChoice('C', 'Pretty', ['pretty', 'json'] as const)).toBe('pretty');
    expect(() => parseChoice('C', 'xml', ['pretty', 'json'] as const)).toThrow('C must be one of pretty, json, got "xml"');
    expect(parseList('L', ['a', ' b '])).toEqual(['a', 'b']);
    expect(() => parseList('L', 'a,,b')).toThrow('L has an empty name');
    expect(parseQueues('Q', ['shard:7:2', { name: 'io', threads: 0, only: ['x'] }], true)).toEqual([
      { name: 'shard:7', threads: 2 },
      { name: 'io', threads: 0, only: ['x'] },
    ]);
    expect(() => parseQueues('Q', [{ name: 'io' }], false)).toThrow('a queue must be "name" or "name:threads"');
    expect(() => parseQueues('Q', 'a,a:2', false)).toThrow('queue "a" is given twice');
    expect(() => parseQueues('Q', 'cpu:99999', false)).toThrow('from 0 to 1024');
  });
});

describe('resolution', () => {
  const file = { path: '/etc/app/rhythm.config.json', values: { schema: 'from_file', threads: 3, tasks: 'jobs', poolSize: 5 } };

  it('takes a flag over the environment over the config file over the default, and says which', () => {
    const r = resolveSettings(['schema', 'threads', 'tasks', 'poolSize', 'logLevel', 'autoMigrate'], {
      flags: { schema: 'from_flag', autoMigrate: true },
      env: { RHYTHM_SCHEMA: 'from_env', RHYTHM_THREADS: '5', RHYTHM_POOL_SIZE: '' },
      file,
      cwd: '/work',
      defaults: { logLevel: 'warn' },
    });
    expect(r.settings.schema).toBe('from_flag');
    expect(r.sources.schema).toBe('flag --schema');
    expect(r.settings.threads).toBe(5);
    expect(r.sources.threads).toBe('env RHYTHM_THREADS');
    expect(r.settings.tasks).toBe(path.resolve('/etc/app', 'jobs')); // relative to the file
    expect(r.settings.poolSize).toBe(5); // an empty variable counts as unset
    expect(r.sources.poolSize).toBe(`config ${file.path}`);
    expect(r.settings.logLevel).toBe('warn');
    expect(r.sources.logLevel).toBe('default');
    expect(r.settings.autoMigrate).toBe(false); // --no-migrate given
  });

  it('neither reads nor checks settings the command does not use', () => {
    const r = resolveSettings(['schema'], { flags: {}, env: { RHYTHM_THREADS: 'lots' } });
    expect(r.settings.schema).toBe('rhythm');
    expect(() => resolveSettings(['threads'], { flags: {}, env: { RHYTHM_THREADS: 'lots' } })).toThrow('RHYTHM_THREADS must be an integer');
  });

  it('gives the library the environment through the same definitions', () => {
    expect(fromEnvironment('databaseUrl', { DATABASE_URL: 'postgres://a/b', RHYTHM_DATABASE_URL: 'postgres://c/d' })).toEqual({
      value: 'postgres://c/d',
      source: 'env RHYTHM_DATABASE_URL',
    });
    expect(fromEnvironment('databaseUrl', { DATABASE_URL: 'postgres://a/b' })?.source).toBe('env DATABASE_URL');
    expect(fromEnvironment('schema', {})).toBeUndefined();
    expect(fromEnvironment('dataDir', { RHYTHM_DATA_DIR: 'pg' }, '/srv')?.value).toBe('/srv/pg');
    expect(() => fromEnvironment('databaseUrl', { RHYTHM_DATABASE_URL: 'mysql://x/y' })).toThrow(
      'RHYTHM_DATABASE_URL must be a postgres://',
    );
    expect(() => fromEnvironment('logLevel', { RHYTHM_LOG_LEVEL: 'loud' })).toThrow('RHYTHM_LOG_LEVEL must be one of');
  });
});

describe('JSON typed by people', () => {
  const where = (text: string) => {
    try {
      JSON.parse(text);
    } catch (err) {
      const e = locateJsonError(text, (err as Error).message);
      return { ...e, at: `${e.line}:${e.column}` };
    }
    throw new Error('parsed');
  };

  it('finds the position, line and column from the engine message or the scanner', () => {
    expect(where('{"a": 1,}')).toMatchObject({ position: 8, at: '1:9', message: "expected double-quoted property name, found '}'" });
    expect(where('[1, 2')).toMatchObject({ position: 5, message: expect.stringContaining('found the end of the input') });
    expect(where("{'a': 1}")).toMatchObject({ position: 1, message: expect.stringContaining('double quotes') });
    // "Unexpected token" messages carry no position: the scanner finds it.
    expect(where('{"items": [1, 2,, 3]}')).toMatchObject({ position: 16, message: "unexpected ','" });
    expect(where('hello')).toMatchObject({ position: 0, message: expect.stringContaining('unexpected word "hello"') });
    expect(where('{\n  "ok": true,\n  "bad": tru\n}\n')).toMatchObject({ position: 25, at: '3:10' });
    expect(where('')).toMatchObject({ position: 0, at: '1:1' });
  });

  it('throws a RhythmValidationError naming what was parsed, with the line and a caret', () => {
    expect(parseJsonText('x', '{"a": [1, 2]}')).toEqual({ a: [1, 2] });
    let message = '';
    try {
      parseJsonText('the payload', '{"a": 1 "b": 2}');
    } catch (err) {
      expect(err).toBeInstanceOf(RhythmValidationError);
      message = (err as Error).message;
    }
    const [first, line, caret] = message.split('\n');
    expect(first).toBe(
      "the payload is not valid JSON: expected ',' or '}' after property value, found '\"' at position 8 (line 1, column 9)",
    );
    expect(caret!.indexOf('^') - line!.indexOf('{')).toBe(8);
  });
});

describe('command-line errors', () => {
  it('are RhythmErrors: usage errors are validation errors', () => {
    expect(new UsageError('x')).toBeInstanceOf(RhythmValidationError);
    expect(new CliError('x')).toBeInstanceOf(RhythmError);
    expect(new UsageError('x').name).toBe('UsageError');
  });
});
