import { listening, type Bus } from '@kiln/bus';
import { decodeOrThrow, devicesPb, devicesSubjects, offloaderSubjects, receiverSubjects, remotePb as pb } from '@kiln/contracts';

/** Listen to the receiver's changes (decoded); one place knows the subject and message. */
export function onReceiverChanges(bus: Bus, handler: (event: pb.ReceiverChanged) => void): Disposable {
  return listening(bus, [receiverSubjects.changed], (msg) => handler(decodeOrThrow(pb.ReceiverChanged, msg.data, msg.subject)));
}

/** Listen to the offloader's settings and pairings (the firmware service publishes them after each change). */
export function onOffloaderChanges(bus: Bus, handler: (view: pb.OffloaderSettingsResponse) => void): Disposable {
  return listening(bus, [offloaderSubjects.changed], (msg) => handler(decodeOrThrow(pb.OffloaderSettingsResponse, msg.data, msg.subject)));
}

/** Listen to the devices service's changes (added, updated, removed; published once its registry holds them). */
export function onDeviceChanges(bus: Bus, handler: (event: devicesPb.DeviceChanged) => void): Disposable {
  return listening(bus, [devicesSubjects.changed], (msg) => handler(decodeOrThrow(devicesPb.DeviceChanged, msg.data, msg.subject)));
}
