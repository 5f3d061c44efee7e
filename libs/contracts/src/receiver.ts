import * as pb from './gen/kiln/remote/v1/remote.js';
import { firmwareSubjects } from './firmware.js';
import { rpcFamily } from './rpc.js';

/** Kiln's release: what peers compare under the offloader's version_match_policy, and what the API reports. */
export const KILN_VERSION = '0.1.0';

/** Remote-build wire protocol version; a peer of another version is not used (see remote.proto). */
export const REMOTE_PROTOCOL_VERSION = 1;

/** Bundle and artifact bytes travel in chunks of at most this size (well under gRPC's 4 MiB message cap). */
export const REMOTE_CHUNK_BYTES = 256 * 1024;

/** Receiver control on the bus (upstream `remote_build/*` names), for the gateway and the CLI. */
export const receiverSubjects = {
  command: (name: string) => `kiln.receiver.${name}`,
  /** ReceiverChanged, published after the change is persisted (pairing window, peers, identity). */
  changed: 'kiln.receiver.event.changed',
} as const;

const command = rpcFamily(receiverSubjects.command);

export const receiverRpc = {
  getIdentity: command('get_identity', pb.GetIdentityRequest, pb.GetIdentityResponse),
  setPairingWindow: command('set_pairing_window', pb.SetPairingWindowRequest, pb.GetIdentityResponse),
  approvePeer: command('approve_peer', pb.ApprovePeerRequest, pb.ApprovePeerResponse),
  removePeer: command('remove_peer', pb.RemovePeerRequest, pb.RemovePeerResponse),
  rotateIdentity: command('rotate_identity', pb.RotateIdentityRequest, pb.GetIdentityResponse),
} as const;

/**
 * Offloader control on the bus, served by the firmware service (it owns the compile lane the
 * receivers join): upstream `remote_build/*` offloader-side names.
 */
export const offloaderSubjects = {
  command: firmwareSubjects.offloaderCommand,
  /**
   * OffloaderSettingsResponse (what get_offloader_settings answers), published after a change of the
   * settings or pairings is persisted, and when a receiver becomes eligible or ineligible.
   */
  changed: 'kiln.firmware.offloader.event.changed',
} as const;

const offloaderCommand = rpcFamily(offloaderSubjects.command);

export const offloaderRpc = {
  getSettings: offloaderCommand('get_offloader_settings', pb.GetOffloaderSettingsRequest, pb.OffloaderSettingsResponse),
  setSettings: offloaderCommand('set_offloader_settings', pb.SetOffloaderSettingsRequest, pb.OffloaderSettingsResponse),
  previewPair: offloaderCommand('preview_pair', pb.PreviewPairRequest, pb.PreviewPairResponse),
  requestPair: offloaderCommand('request_pair', pb.OffloaderPairRequest, pb.OffloaderPairResponse),
  unpair: offloaderCommand('unpair', pb.UnpairRequest, pb.UnpairResponse),
  setPairingEnabled: offloaderCommand('set_pairing_enabled', pb.SetPairingEnabledRequest, pb.SetPairingEnabledResponse),
  editPairingEndpoint: offloaderCommand('edit_pairing_endpoint', pb.EditPairingEndpointRequest, pb.EditPairingEndpointResponse),
} as const;
