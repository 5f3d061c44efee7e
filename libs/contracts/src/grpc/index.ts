// gRPC side of the contracts, a separate entry point (`@kiln/contracts/grpc`) so that code which
// never speaks gRPC never loads @grpc/grpc-js.
export * from './status.js';
export * from './client.js';
export * from './logstore-client.js';
export { LogStoreServiceService, type LogStoreServiceServer } from '../gen/kiln/logstore/v1/logstore.js';
export * from './receiver-client.js';
export {
  BuildServiceService,
  PairingServiceService,
  SessionServiceService,
  type BuildServiceServer,
  type PairingServiceServer,
  type SessionServiceServer,
} from '../gen/kiln/remote/v1/remote.js';
