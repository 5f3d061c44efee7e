// The identity and pairing files without TLS (`@kiln/remote-identity/store`): what a host reads to show
// its own pin and its pairings without loading @grpc/grpc-js.
export { certificateFingerprint, formatPin, loadOrCreateIdentity, parsePin, readIdentity, type IdentityOptions, type PeerIdentity } from '../identity.js';
export { joinAddress, ReceiverPairings, splitAddress, type ReceiverPairing } from '../pairings.js';
