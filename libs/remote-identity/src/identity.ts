import { createHash, randomUUID, webcrypto, X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KilnError, readTextIfExists, writeFileAtomic } from '@kiln/core';
import { SECRET_DIR_MODE, SECRET_FILE_MODE, warnIfExposed, type KeyFileWarner } from './key-file.js';

/**
 * A remote-build peer's identity: an EC P-256 key and a self-signed certificate, pinned by the
 * SHA-256 of the certificate's DER. `dashboardId` names the peer in build paths and pairings and
 * survives rotation (a receiver keeps an offloader's warm build dirs across a key change).
 */
export interface PeerIdentity {
  readonly dashboardId: string;
  readonly name: string;
  readonly keyPem: string;
  readonly certPem: string;
  /** Lower-case hex SHA-256 of the certificate DER: the pin. */
  readonly fingerprint: string;
}

interface IdentityMeta {
  dashboardId: string;
  name: string;
}

/** Key, certificate and id in ONE file, so a rotation is one atomic rename (never a key without its cert). */
const IDENTITY_FILE = 'identity.json';
/** Reading an identity: where to warn about a key file others can read. */
export interface IdentityOptions {
  logger?: KeyFileWarner;
}
/** Pins, not expiry, carry the trust; a long validity keeps a headless receiver from expiring under its peers. */
const VALIDITY_YEARS = 20;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * The certificate generator, loaded only to create a key (reading an identity needs node:crypto only,
 * so showing a pin does not keep x509, tsyringe and the ASN.1 codecs in memory).
 */
let generator: Promise<typeof import('@peculiar/x509')> | undefined;
function loadX509(): Promise<typeof import('@peculiar/x509')> {
  generator ??= (async () => {
    // @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs the Reflect metadata polyfill loaded first.
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return generator;
}

/** Lower-case hex SHA-256 of a certificate (PEM text or DER bytes). */
export function certificateFingerprint(cert: string | Uint8Array): string {
  const der = typeof cert === 'string' ? new X509Certificate(cert).raw : cert;
  return createHash('sha256').update(der).digest('hex');
}

/** A pin for people to compare out of band: upper-case hex in groups of four. */
export function formatPin(fingerprint: string): string {
  return fingerprint.toUpperCase().match(/.{1,4}/g)?.join(' ') ?? '';
}

/** A pin as typed by a person (any case, spaces or colons) → the fingerprint form; invalid → invalid_args. */
export function parsePin(field: string, pin: string): string {
  const hex = pin.replace(/[\s:]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new KilnError('invalid_args', `${field}: must be a SHA-256 fingerprint (64 hex digits), got ${JSON.stringify(pin)}`, { field, value: pin });
  }
  return hex;
}

/** First uses in flight, by directory. */
const creating = new Map<string, Promise<PeerIdentity>>();

/**
 * The identity stored in `dir`, created (0600 files) on first use. Concurrent first uses in one
 * process share one creation (two would write two different keys, and the loser's pin would be shown
 * or sent once and then never again).
 */
export function loadOrCreateIdentity(dir: string, name: string, options: IdentityOptions = {}): Promise<PeerIdentity> {
  const pending = creating.get(dir);
  if (pending) return pending;
  const run = (async () => (await readIdentity(dir, options)) ?? writeIdentity(dir, { dashboardId: randomUUID(), name }))();
  creating.set(dir, run);
  const forget = () => void creating.delete(dir);
  run.then(forget, forget);
  return run;
}

/** A fresh key and certificate; the dashboard id (and name) stay. Paired peers must re-pair. */
export async function rotateIdentity(dir: string): Promise<PeerIdentity> {
  const existing = await readIdentity(dir);
  if (!existing) throw new KilnError('not_found', `no identity to rotate in ${dir}`, { dir });
  return writeIdentity(dir, { dashboardId: existing.dashboardId, name: existing.name });
}

/** The identity stored in `dir`, or undefined when none was created yet (reading loads only node:crypto). */
export async function readIdentity(dir: string, options: IdentityOptions = {}): Promise<PeerIdentity | undefined> {
  const file = join(dir, IDENTITY_FILE);
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  await warnIfExposed(file, 'private key file', options.logger);
  try {
    const stored = JSON.parse(text) as Partial<Record<'dashboardId' | 'name' | 'keyPem' | 'certPem', unknown>>;
    const { dashboardId, name, keyPem, certPem } = stored;
    if (typeof dashboardId !== 'string' || typeof name !== 'string' || typeof keyPem !== 'string' || typeof certPem !== 'string') {
      throw new Error('missing dashboardId, name, keyPem or certPem');
    }
    return { dashboardId, name, keyPem, certPem, fingerprint: certificateFingerprint(certPem) };
  } catch (err) {
    throw new KilnError('internal_error', `identity ${join(dir, IDENTITY_FILE)} is unreadable (${(err as Error).message}); move it aside to create a new one`, { dir });
  }
}

async function writeIdentity(dir: string, meta: IdentityMeta): Promise<PeerIdentity> {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore);
  notAfter.setFullYear(notAfter.getFullYear() + VALIDITY_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomUUID().replaceAll('-', ''),
    name: `CN=kiln ${meta.dashboardId}`,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      // Self-signed and used as its own trust anchor by the peer that pins it.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  const certPem = cert.toString('pem');
  const identity = { ...meta, keyPem, certPem };
  // The key's own directory is created owner-only (an existing one keeps the mode the operator chose).
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir, { mode: SECRET_DIR_MODE }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await writeFileAtomic(join(dir, IDENTITY_FILE), `${JSON.stringify(identity, null, 2)}\n`, SECRET_FILE_MODE);
  return { ...identity, fingerprint: certificateFingerprint(certPem) };
}
