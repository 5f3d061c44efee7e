import { realpath } from 'node:fs/promises';
import { join, relative, isAbsolute, sep } from 'node:path';
import { KilnError, notFound } from './errors.js';
import { assertConfigurationName } from './names.js';

/**
 * A configuration name → the real path of its YAML inside the config dir. THE one check every command
 * that takes a configuration goes through (firmware lanes, devices, artifacts): the name is validated,
 * links are resolved, and anything whose real path leaves the config dir is refused, so a symlink
 * `evil.yaml → /elsewhere/x.yaml` can never be built, flashed, renamed (copied) or read. A link that
 * stays inside the config dir keeps working.
 */
export async function resolveConfigurationFile(configDir: string, value: unknown, field = 'configuration'): Promise<string> {
  const configuration = assertConfigurationName(field, value);
  let real: string;
  try {
    real = await realpath(join(configDir, configuration));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
      throw new KilnError('not_found', `unknown configuration ${JSON.stringify(configuration)}: no such file in ${configDir}`, { [field]: configuration });
    }
    throw err;
  }
  const inside = relative(await realConfigDir(configDir), real);
  if (inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    throw new KilnError('permission_denied', `configuration ${JSON.stringify(configuration)} is a link that leads outside the config dir; refused`, { [field]: configuration });
  }
  return real;
}

async function realConfigDir(configDir: string): Promise<string> {
  try {
    return await realpath(configDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('config dir', configDir);
    throw err;
  }
}
