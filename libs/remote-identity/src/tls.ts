import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { credentials, experimental, type ChannelCredentials, type ServerCredentials } from '@grpc/grpc-js';
import { KilnError } from '@kiln/core';
import { certificateFingerprint, type PeerIdentity } from './identity.js';
import { splitAddress } from './pairings.js';

/**
 * TLS with certificates pinned by SHA-256, both ways. Peers use self-signed certificates, so CA
 * verification proves nothing by itself: each side makes the pinned peer certificate its only trust
 * anchor and then compares the fingerprint, so a different key with the same subject is refused
 * during the handshake, before any request is sent.
 */

/** A peer as the other side pins it: its certificate (trust anchor) and the fingerprint it must have. */
export interface PinnedPeer {
  readonly certPem: string;
  readonly fingerprint: string;
}

/** Client credentials that present `identity` and accept only a server whose certificate is `peer`. */
export function pinnedChannelCredentials(identity: PeerIdentity, peer: PinnedPeer): ChannelCredentials {
  return credentials.createSsl(Buffer.from(peer.certPem), Buffer.from(identity.keyPem), Buffer.from(identity.certPem), {
    // Called after chain verification against the pinned certificate succeeded; replaces the hostname
    // check (the certificate names a peer id, not a host) with the pin comparison.
    checkServerIdentity: (_host, cert) => {
      const got = certificateFingerprint(cert.raw);
      return got === peer.fingerprint ? undefined : pinMismatch(peer.fingerprint, got);
    },
  });
}

export function pinMismatch(expected: string, got: string): KilnError {
  return new KilnError('permission_denied', `peer certificate fingerprint ${got} does not match the pinned ${expected}`, { expected, got });
}

/**
 * The certificate a TLS server at `address` presents, for a first contact (preview). Nothing is
 * trusted here: the caller shows the fingerprint for an out-of-band check and pins it afterwards.
 */
export async function probePeerCertificate(address: string, identity: PeerIdentity, timeoutMs = 5_000): Promise<PinnedPeer> {
  const { host, port } = splitAddress(address);
  return new Promise<PinnedPeer>((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], key: identity.keyPem, cert: identity.certPem });
    const timer = setTimeout(() => socket.destroy(new KilnError('timeout', `no TLS handshake from ${address} within ${timeoutMs} ms`, { address })), timeoutMs);
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate(true)?.raw;
      clearTimeout(timer);
      socket.destroy();
      if (!raw) return reject(new KilnError('permission_denied', `${address} presented no certificate`, { address }));
      const certPem = new X509Certificate(raw).toString();
      resolve({ certPem, fingerprint: certificateFingerprint(raw) });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof KilnError ? err : new KilnError('unavailable', `cannot reach ${address}: ${err.message}`, { address }));
    });
  });
}

/**
 * Server-side TLS material that can change while serving: the server's own identity (rotation) and
 * the client certificates it accepts as trust anchors (pending and approved peers). A client that is
 * not among them still completes the handshake (it may only preview and request pairing), but its
 * connection is not "authorized", so `peerFingerprint` reports none for it.
 */
export class PeerTrustStore implements experimental.CertificateProvider {
  private identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private identity: experimental.IdentityCertificateUpdate;
  private anchors: Buffer;

  constructor(identity: PeerIdentity, peerCerts: readonly string[] = []) {
    this.identity = toIdentityUpdate(identity);
    this.anchors = toAnchors(identity, peerCerts);
  }

  /** Replace the server identity (new connections use it). */
  setIdentity(identity: PeerIdentity, peerCerts: readonly string[]): void {
    this.identity = toIdentityUpdate(identity);
    this.anchors = toAnchors(identity, peerCerts);
    for (const listener of this.identityListeners) listener(this.identity);
    for (const listener of this.caListeners) listener({ caCertificate: this.anchors });
  }

  /** Replace the trusted client certificates (new connections use them). */
  setPeerCerts(identity: PeerIdentity, peerCerts: readonly string[]): void {
    this.anchors = toAnchors(identity, peerCerts);
    for (const listener of this.caListeners) listener({ caCertificate: this.anchors });
  }

  serverCredentials(): ServerCredentials {
    // requireClientCertificate=false: request a client certificate but let unknown ones connect.
    return experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    // Asynchronously: grpc-js registers its own watcher only after adding this listener, so a
    // synchronous first update would be lost and the server would drop every connection.
    queueMicrotask(() => this.caListeners.has(listener) && listener({ caCertificate: this.anchors }));
  }
  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => this.identityListeners.has(listener) && listener(this.identity));
  }
  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}

function toIdentityUpdate(identity: PeerIdentity): experimental.IdentityCertificateUpdate {
  return { certificate: Buffer.from(identity.certPem), privateKey: Buffer.from(identity.keyPem) };
}

/** Never empty: the server's own certificate is always an anchor (nobody else holds its key). */
function toAnchors(identity: PeerIdentity, peerCerts: readonly string[]): Buffer {
  return Buffer.from([identity.certPem, ...peerCerts].join('\n'));
}

/** A call's authenticated client certificate fingerprint, or undefined for an unknown/absent certificate. */
export function peerFingerprint(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null }): string | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  return raw ? certificateFingerprint(raw) : undefined;
}
