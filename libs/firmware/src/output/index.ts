export * from './limits.js';
export * from './notice.js';
export * from './verdicts.js';
export * from './job-output.js';
