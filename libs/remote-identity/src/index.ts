export { certificateFingerprint, formatPin, loadOrCreateIdentity, parsePin, rotateIdentity, type PeerIdentity } from './identity.js';
export { PeerTrustStore, peerFingerprint, pinMismatch, pinnedChannelCredentials, probePeerCertificate, splitAddress, type PinnedPeer } from './tls.js';
export { ReceiverPairings, type ReceiverPairing } from './pairings.js';
export { packBundle, walkBundle, type BundleEntry, type BundleLimits } from './bundle.js';
