export { DEFAULT_STREAM_CAPACITY, DEFAULT_STREAM_MAX_BYTES } from './capacity.js';
export { StreamBackpressureError } from './errors.js';
export { asEventStream, streamLog, type LogItem, type LogStreamOptions } from './log-stream.js';
export { streamEvents } from './stream-events.js';
export type { ByteBound, DropNotice, EventStream, StreamControls, StreamOptions } from './types.js';
