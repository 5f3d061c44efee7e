export { certificateFingerprint, formatPin, loadOrCreateIdentity, parsePin, rotateIdentity, type IdentityOptions, type PeerIdentity } from './identity.js';
export { formatMode, SECRET_FILE_MODE, warnIfExposed, type KeyFileWarner } from './key-file.js';
export { PeerTrustStore, peerFingerprint, pinMismatch, pinnedChannelCredentials, probePeerCertificate, type PinnedPeer } from './tls.js';
export { joinAddress, ReceiverPairings, splitAddress, type ReceiverPairing } from './pairings.js';
export { packBundle, walkBundle, type BundleEntry, type BundleLimits } from './bundle.js';
