export * from './config.js';
export * from './settings.js';
export { envToPath, pathToEnv } from './env.js';
export { describeSource, type Source } from './layers.js';
export * as v from 'valibot';
