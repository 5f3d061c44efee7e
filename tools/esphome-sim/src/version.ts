/** The esphome release whose CLI and on-disk contract the simulator mimics. */
export const ESPHOME_VERSION = '2026.11.0';

/** Every label says "simulator": nobody should mistake simulated output for a real build. */
export const VERSION_LINE = `Version: ${ESPHOME_VERSION} (esphome-sim: simulator, not the real toolchain)`;
export const BANNER = 'INFO esphome-sim: simulated toolchain (no real build)';
