export * from './service.js';
export * from './settings.js';
export { FirmwareCore, type FirmwareCoreDeps } from './firmware-core.js';
export { resolveBuildPaths, type BuildPaths } from './paths.js';
export { Toolchain, parseProgress, processAlive, type ToolchainOptions, type ToolchainAction, type ToolchainProcess } from './toolchain/index.js';
export { JobOutput, trimNotice, MAX_OUTPUT_LINES_RETAINED, MAX_OUTPUT_LINES_INFLIGHT } from './output/index.js';
