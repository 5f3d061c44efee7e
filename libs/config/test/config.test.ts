import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { envToPath, intSetting, listenSetting, loadConfig, pathToEnv, v } from '../src/index.js';

const logstoreSchema = v.strictObject({ flushIntervalMs: intSetting(50, { min: 1 }), grpcListen: listenSetting('off') });

async function tempFile(contents: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-config-'));
  const path = join(dir, 'kiln.json');
  await writeFile(path, contents);
  return path;
}

describe('config precedence', () => {
  it('flags beat environment beat file beat defaults', async () => {
    const file = await tempFile(JSON.stringify({ dataDir: '/from/file', logLevel: 'debug', logstore: { flushIntervalMs: 10, grpcListen: 'file:1' } }));
    const config = await loadConfig({
      configFile: file,
      env: { HOME: '/home/x', KILN_DATA_DIR: '/from/env', KILN_LOGSTORE__FLUSH_INTERVAL_MS: '20' },
      flags: [{ path: 'dataDir', value: '/from/flag', flag: '--data-dir' }],
    });
    expect(config.core.dataDir).toBe('/from/flag');
    expect(config.core.configDir).toBe('/from/flag/config');
    expect(config.core.logLevel).toBe('debug');
    expect(config.section('logstore', logstoreSchema)).toEqual({ flushIntervalMs: 20, grpcListen: 'file:1' });
  });

  it('falls back to XDG defaults when nothing is set', async () => {
    const config = await loadConfig({ env: { HOME: '/home/u' } });
    expect(config.core.dataDir).toBe('/home/u/.local/share/kiln');
    expect(config.core.configDir).toBe('/home/u/.local/share/kiln/config');
    expect(config.core.nats).toBeUndefined();
    expect(config.section('logstore', logstoreSchema)).toEqual({ flushIntervalMs: 50, grpcListen: 'off' });
  });

  it('resolves relative directories against the working directory', async () => {
    const config = await loadConfig({ env: { HOME: '/h' }, cwd: '/srv', flags: [{ path: 'dataDir', value: 'data', flag: '--data-dir' }] });
    expect(config.core.dataDir).toBe('/srv/data');
  });

  it('maps environment names to setting paths and back', () => {
    expect(envToPath('KILN_DATA_DIR')).toBe('dataDir');
    expect(envToPath('KILN_LOGSTORE__GRPC_LISTEN')).toBe('logstore.grpcListen');
    expect(envToPath('KILN_CONFIG_FILE')).toBeUndefined();
    expect(envToPath('PATH')).toBeUndefined();
    expect(pathToEnv('logstore.grpcListen')).toBe('KILN_LOGSTORE__GRPC_LISTEN');
  });

  it('a launcher variable (KILN_SUPERVISE_ARGS, empty or set, as the systemd unit sets it) is not read as a setting', async () => {
    expect(envToPath('KILN_SUPERVISE_ARGS')).toBeUndefined();
    expect(envToPath('KILN_WORKER_ARGS')).toBeUndefined();
    for (const value of ['', '--services logstore,gateway']) {
      const config = await loadConfig({ env: { HOME: '/h', KILN_SUPERVISE_ARGS: value, KILN_LOG_LEVEL: 'warn' }, cwd: '/srv', flags: [] });
      expect(config.core.logLevel).toBe('warn');
    }
  });
});

describe('bad values name the setting, the value and where it came from', () => {
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    [
      'bad number from env',
      async () => (await loadConfig({ env: { HOME: '/h', KILN_LOGSTORE__FLUSH_INTERVAL_MS: 'soon' } })).section('logstore', logstoreSchema),
      /logstore\.flushIntervalMs = "soon" \(from environment variable KILN_LOGSTORE__FLUSH_INTERVAL_MS\)/,
    ],
    [
      'bad log level from flag',
      () => loadConfig({ env: { HOME: '/h' }, flags: [{ path: 'logLevel', value: 'loud', flag: '--log-level' }] }),
      /logLevel = "loud" \(from flag --log-level\)/,
    ],
    [
      'bad NATS URL',
      () => loadConfig({ env: { HOME: '/h', KILN_NATS: 'not a url' } }),
      /nats = "not a url" \(from environment variable KILN_NATS\): must be a NATS URL/,
    ],
    [
      'unknown key in a section (typo)',
      async () => (await loadConfig({ env: { HOME: '/h', KILN_LOGSTORE__FLUSH_INTERVALL_MS: '5' } })).section('logstore', logstoreSchema),
      /logstore\.flushIntervallMs = "5" \(from environment variable KILN_LOGSTORE__FLUSH_INTERVALL_MS\): is not a known setting/,
    ],
  ];
  it.each(cases)('%s', async (_name, run, message) => {
    const err = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('invalid_args');
    expect((err as KilnError).message).toMatch(message);
  });

  it('never echoes a secret setting in the error', async () => {
    const schema = v.strictObject({ password: v.optional(v.pipe(v.string(), v.minLength(8, 'must be at least 8 characters'))) });
    const config = await loadConfig({ env: { HOME: '/h' }, flags: [{ path: 'gateway.password', value: 'hunter2', flag: '--password' }] });
    const err = (() => {
      try {
        config.section('gateway', schema);
      } catch (e) {
        return e as KilnError;
      }
    })();
    expect(err?.message).toBe('setting gateway.password = "<redacted>" (from flag --password): must be at least 8 characters');
    expect(JSON.stringify(err?.details)).not.toContain('hunter2');
  });

  it('a config file that is not JSON names the file', async () => {
    const file = await tempFile('{ dataDir: ');
    await expect(loadConfig({ configFile: file, env: { HOME: '/h' } })).rejects.toThrow(new RegExp(`config file ${file} is not valid JSON`));
  });

  it('a missing explicit config file is an error, a missing default one is not', async () => {
    await expect(loadConfig({ configFile: '/nonexistent/kiln.json', env: { HOME: '/h' } })).rejects.toThrow(/cannot read config file \/nonexistent\/kiln.json/);
    await expect(loadConfig({ env: { HOME: '/nonexistent-home' } })).resolves.toBeDefined();
  });

  it('a bad value in a config file names the file', async () => {
    const file = await tempFile(JSON.stringify({ logstore: { flushIntervalMs: -1 } }));
    const config = await loadConfig({ configFile: file, env: { HOME: '/h' } });
    expect(() => config.section('logstore', logstoreSchema)).toThrow(new RegExp(`logstore.flushIntervalMs = -1 \\(from config file ${file}\\)`));
  });

  it('lists unknown top-level sections', async () => {
    const config = await loadConfig({ env: { HOME: '/h', KILN_LOGSTROE__X: '1' } });
    expect(config.unknownKeys(['logstore', 'supervisor'])).toEqual(['logstroe']);
  });
});

describe('listen addresses', () => {
  it('parses host:port and [ipv6]:port, and names the setting when it cannot', async () => {
    const { parseListen } = await import('../src/index.js');
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:6052')).toEqual({ host: '::1', port: 6052 });
    expect(() => parseListen('localhost', 'gateway.listen')).toThrow(/gateway\.listen must be host:port, got "localhost"/);
    expect(() => parseListen('h:70000', 'gateway.listen')).toThrow(expect.objectContaining({ code: 'invalid_args', details: { field: 'gateway.listen', value: 'h:70000' } }));
  });
});
