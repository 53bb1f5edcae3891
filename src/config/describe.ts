/** The effective configuration as `rhythm config` and the startup log show it: secrets masked, each value with its source. */
import { maskUrl } from '../logger.js';
import { SETTINGS, type SettingKey } from './settings.js';
import type { Resolved } from './resolve.js';

export function describeSettings(r: Resolved, keys: readonly SettingKey[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    let value: unknown = r.settings[key];
    if (key === 'databaseUrl' && value !== undefined) value = maskUrl(value as string);
    if (key === 'dashboardToken' && value !== undefined) value = '(set; not shown)';
    if (value === undefined) value = `(${SETTINGS[key].defaultText ?? 'default'})`;
    out[key] = { value, source: r.sources[key] };
  }
  if (r.file) out.configFile = r.file.path;
  return out;
}
