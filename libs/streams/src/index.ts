export { DEFAULT_STREAM_CAPACITY, DEFAULT_STREAM_MAX_BYTES } from './capacity.js';
export { StreamBackpressureError } from './errors.js';
export { streamEvents } from './stream-events.js';
export type { ByteBound, DropNotice, EventStream, StreamControls, StreamOptions } from './types.js';
