export * from './errors.js';
export * from './atomic-file.js';
export * from './names.js';
export * from './disposable.js';
export * from './deferred.js';
export * from './clock.js';
export * from './files.js';
export * from './config-file.js';
