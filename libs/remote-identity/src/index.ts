export { certificateFingerprint, formatPin, loadOrCreateIdentity, parsePin, rotateIdentity, type PeerIdentity } from './identity.js';
export { PeerTrustStore, peerFingerprint, pinMismatch, pinnedChannelCredentials, probePeerCertificate, type PinnedPeer } from './tls.js';
export { joinAddress, ReceiverPairings, splitAddress, type ReceiverPairing } from './pairings.js';
export { packBundle, walkBundle, type BundleEntry, type BundleLimits } from './bundle.js';
