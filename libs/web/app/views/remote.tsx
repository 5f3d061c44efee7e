import { OffloaderSection } from './offloader.js';
import { ReceiverSection } from './receiver.js';

/** `#/remote`: pairing for remote builds, this host as an offloader and as a receiver. */
export function RemotePage() {
  return (
    <>
      <OffloaderSection />
      <ReceiverSection />
    </>
  );
}
