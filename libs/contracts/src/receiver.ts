// Receiver control and offloader control on the bus are declared in proto (ReceiverControlService,
// OffloaderService in kiln/remote/v1/remote.proto); events: subjects.ts.

/** Kiln's release: what peers compare under the offloader's version_match_policy, and what the API reports. */
export const KILN_VERSION = '0.1.0';

/** Remote-build wire protocol version; a peer of another version is not used (see remote.proto). */
export const REMOTE_PROTOCOL_VERSION = 1;

/** Bundle and artifact bytes travel in chunks of at most this size (well under gRPC's 4 MiB message cap). */
export const REMOTE_CHUNK_BYTES = 256 * 1024;
