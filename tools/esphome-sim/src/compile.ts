import { writeFirmware, writeStorage, yamlSeed, type DevicePaths } from './artifacts.js';
import type { DeviceConfig, Platform } from './config.js';
import type { ResolvedKnobs } from './knobs.js';
import { hangForever, line, sleepUntilPhase, write } from './out.js';
import { PIO_PLATFORMS, writeProject } from './project.js';

const MEMORY: Record<Platform, { ram: number; flash: number }> = {
  esp32: { ram: 327680, flash: 1835008 },
  esp8266: { ram: 81920, flash: 1044464 },
  rp2040: { ram: 262144, flash: 1568768 },
  bk72xx: { ram: 262144, flash: 1187840 },
  ln882x: { ram: 302080, flash: 1228800 },
  rtl87xx: { ram: 262144, flash: 798720 },
  host: { ram: 8388608, flash: 16777216 },
};

const CORE_SOURCES = ['application', 'component', 'helpers', 'log', 'scheduler', 'util', 'preferences', 'string_ref'];
const FLOOD_BATCH_BYTES = 64 * 1024;

export const SEPARATOR = '='.repeat(25);
export const DASHES = '-'.repeat(80);

export function processingLine(device: DeviceConfig): string {
  return `Processing ${device.name} (board: ${device.board}; framework: ${device.framework}; platform: ${PIO_PLATFORMS[device.platform]})`;
}

export function resultLine(ok: boolean, startedAt: number): string {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(2);
  return `${SEPARATOR} [${ok ? 'SUCCESS' : 'FAILED'}] Took ${seconds} seconds ${SEPARATOR}`;
}

/** `esphome compile`: storage JSON first (as esphome does), then the PlatformIO project, the build, binaries and idedata. */
export async function compile(device: DeviceConfig, paths: DevicePaths, knobs: ResolvedKnobs): Promise<number> {
  const startedAt = Date.now();
  const steps = Math.floor(knobs.steps);
  // A slice of the time goes to code generation, the rest is spread over the ninja steps.
  const setupMs = knobs.compileMs * 0.1;
  const stepMs = steps > 0 ? (knobs.compileMs - setupMs) / steps : 0;

  await line('INFO Generating C++ source...');
  await writeStorage(device, paths);
  await writeProject(device, paths);
  await sleepUntilPhase(setupMs);
  await line('INFO Compiling app...');
  await line(processingLine(device));
  await line(DASHES);
  if (knobs.floodLines > 0) await flood(device, knobs.floodLines, knobs.floodLineBytes);

  const sources = sourceNames(device);
  const failAt = Math.max(1, Math.floor(steps * 0.6));
  const hangAt = Math.max(1, Math.floor(steps / 2));
  for (let step = 1; step <= steps; step++) {
    if (knobs.hang === 'compile' && step === hangAt) await hangForever();
    if (knobs.failCompile && step === failAt) return compileFailure(device, startedAt);
    await sleepUntilPhase(setupMs + step * stepMs);
    const target =
      step === steps ? `Linking .pioenvs/${device.name}/firmware.elf` : `Compiling .pioenvs/${device.name}/${sourceName(sources, step - 1)}`;
    await line(`[${step}/${steps}] ${target}`);
  }
  if (steps === 0 && knobs.hang === 'compile') await hangForever();
  if (steps === 0 && knobs.failCompile) return compileFailure(device, startedAt);

  const seed = yamlSeed(device);
  const memory = MEMORY[device.platform];
  const ramUsed = Math.floor(memory.ram * (0.08 + (seed[0] ?? 0) / 2550));
  const flashUsed = Math.min(memory.flash, Math.floor(knobs.firmwareBytes));
  await line(usageLine('RAM:  ', ramUsed, memory.ram));
  await line(usageLine('Flash:', flashUsed, memory.flash));
  await line(`Building .pioenvs/${device.name}/firmware.bin`);
  await writeFirmware(device, paths, knobs.firmwareBytes);
  await line(resultLine(true, startedAt));
  await line('INFO Successfully compiled program.');
  return 0;
}

/** PlatformIO's memory summary: `RAM:   [=         ]  10.5% (used 34476 bytes from 327680 bytes)`. */
function usageLine(label: string, used: number, total: number): string {
  const percent = (used / total) * 100;
  const bar = '='.repeat(Math.min(10, Math.floor(percent / 10))).padEnd(10);
  return `${label} [${bar}] ${percent.toFixed(1).padStart(5)}% (used ${used} bytes from ${total} bytes)`;
}

function sourceNames(device: DeviceConfig): string[] {
  const components = device.integrations.filter((key) => key !== 'esphome').map((key) => `src/esphome/components/${key}/${key}.cpp.o`);
  const core = CORE_SOURCES.map((name) => `src/esphome/core/${name}.cpp.o`);
  return ['src/main.cpp.o', ...components, ...core];
}

/** Big builds cycle through the list; a round suffix keeps every object file name distinct. */
function sourceName(sources: readonly string[], index: number): string {
  const base = sources[index % sources.length] ?? 'src/main.cpp.o';
  const round = Math.floor(index / sources.length);
  return round === 0 ? base : base.replace(/\.cpp\.o$/, `_${round}.cpp.o`);
}

async function compileFailure(device: DeviceConfig, startedAt: number): Promise<number> {
  await line('src/main.cpp: In function \'void setup()\':');
  await line("src/main.cpp:42:3: error: 'esphome_sim_failure' was not declared in this scope (simulated: esphome-sim knob failCompile)");
  await line(`*** [.pioenvs/${device.name}/src/main.cpp.o] Error 1`);
  await line(resultLine(false, startedAt));
  await line('ERROR Error while compiling: simulated compile failure (esphome-sim knob failCompile)');
  return 1;
}

/** Filler output as fast as the pipe takes it; batching keeps the simulator itself from being the bottleneck. */
async function flood(device: DeviceConfig, count: number, lineBytes: number): Promise<void> {
  const size = Math.floor(lineBytes);
  let batch = '';
  for (let i = 1; i <= count; i++) {
    const prefix = `Compiling .pioenvs/${device.name}/lib/flood/flood_${i}.cpp.o `;
    batch += `${prefix.length >= size ? prefix.slice(0, size) : prefix.padEnd(size, '.')}\n`;
    if (batch.length >= FLOOD_BATCH_BYTES) {
      await write(batch);
      batch = '';
    }
  }
  if (batch.length > 0) await write(batch);
}
