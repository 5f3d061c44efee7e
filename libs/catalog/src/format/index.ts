export * from './layout.js';
export * from './entries.js';
