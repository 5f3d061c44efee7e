import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { isErrorCode, KilnError, toKilnError, type ErrorCode } from '@kiln/core';

/** Deadline for unary gRPC calls (STYLE: every client call has one). */
export const DEFAULT_GRPC_DEADLINE_MS = 10_000;

const ERROR_METADATA_KEY = 'kiln-error-bin';

const TO_STATUS: Record<ErrorCode, status> = {
  invalid_args: status.INVALID_ARGUMENT,
  invalid_message: status.INVALID_ARGUMENT,
  unknown_command: status.UNIMPLEMENTED,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  not_authenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
  timeout: status.DEADLINE_EXCEEDED,
  unavailable: status.UNAVAILABLE,
  cancelled: status.CANCELLED,
  no_space: status.RESOURCE_EXHAUSTED,
  internal_error: status.INTERNAL,
};

/** A KilnError as a gRPC status; the full error rides in binary metadata so the client can rebuild it. */
export function toGrpcStatus(err: unknown): Partial<StatusObject> {
  const error = toKilnError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_METADATA_KEY, Buffer.from(JSON.stringify(error.toJSON())));
  return { code: TO_STATUS[error.code], details: error.message, metadata };
}

/** The KilnError a server sent, or one mapped from the gRPC status (transport failures). */
export function fromGrpcError(err: ServiceError | Error): KilnError {
  const serviceError = err as Partial<ServiceError>;
  const raw = serviceError.metadata?.get(ERROR_METADATA_KEY)[0];
  if (raw instanceof Buffer) {
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as { code: string; message: string; details: Record<string, unknown> };
      if (isErrorCode(parsed.code)) return new KilnError(parsed.code, parsed.message, parsed.details ?? {});
    } catch {
      // Fall through to the status mapping.
    }
  }
  const code = serviceError.code;
  const mapped: ErrorCode =
    code === status.DEADLINE_EXCEEDED ? 'timeout' : code === status.UNAVAILABLE ? 'unavailable' : code === status.CANCELLED ? 'cancelled' : code === status.NOT_FOUND ? 'not_found' : 'internal_error';
  return new KilnError(mapped, serviceError.details || err.message, { grpcCode: code });
}

export function deadline(ms = DEFAULT_GRPC_DEADLINE_MS): Date {
  return new Date(Date.now() + ms);
}
