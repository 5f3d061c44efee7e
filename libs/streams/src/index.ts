export { DEFAULT_STREAM_CAPACITY } from './capacity.js';
export { StreamBackpressureError } from './errors.js';
export { streamEvents } from './stream-events.js';
export type { EventStream, StreamControls, StreamOptions } from './types.js';
