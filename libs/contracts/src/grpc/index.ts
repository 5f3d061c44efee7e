// gRPC side of the contracts, a separate entry point (`@kiln/contracts/grpc`) so that code which
// never speaks gRPC never loads @grpc/grpc-js.
export * from './status.js';
export * from './logstore-client.js';
export { LogStoreServiceService, type LogStoreServiceServer } from './gen/kiln/logstore/v1/logstore.js';
