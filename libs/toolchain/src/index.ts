export type { ToolchainAction, ToolchainExit, ToolchainOptions, ToolchainProcess, ToolchainRunOptions } from './types.js';
export { DEFAULT_KILL_GRACE_MS, DEFAULT_TOOLCHAIN_COMMAND, Toolchain } from './toolchain.js';
export { toolchainCommand } from './command.js';
export { actionArgs } from './args.js';
export { parseProgress } from './progress.js';
export { MAX_LINE_CHARS, splitLines } from './lines.js';
export { spawnError } from './spawn-error.js';
export { groupAlive, processAlive, signalGroup, waitGroupGone } from './process-tree.js';
export { groupRecordOf, reapGroup, RunningGroups, type GroupRecord, type ReapOutcome, type ReapReport } from './running-groups.js';
export {
  FLASH_LAYOUT_ARTIFACT,
  parseFlashLayout,
  parsePlatformioIni,
  PLATFORMIO_INI_ARTIFACT,
  PLATFORMIO_INI_MAX_BYTES,
  readIdeData,
  type FlashLayout,
  type IdeData,
} from './idedata.js';
