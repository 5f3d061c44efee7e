import { describe, expect, it } from 'vitest';
import { parseProgress } from '../src/index.js';

describe('parseProgress', () => {
  it.each<[string, number | undefined]>([
    ['INFO Reading configuration /config/kitchen.yaml...', 2],
    ['INFO Generating C++ source...', 5],
    ['INFO Compiling app...', 10],
    ['Processing kitchen (board: esp32dev; framework: arduino; platform: platformio/espressif32)', undefined],
    ['[1/1424] Compiling .pioenvs/kitchen/src/main.cpp.o', 10],
    ['[907/1424] Building C object esp-idf/freertos/CMakeFiles/__idf_freertos.dir/queue.c.obj', 66],
    ['[1424/1424] Linking .pioenvs/kitchen/firmware.elf', 99],
    ['[20/20] Linking .pioenvs/kitchen/firmware.elf', 99],
    ['[5/3] nonsense', undefined],
    ['RAM:   [=         ]  10.5% (used 34476 bytes from 327680 bytes)', undefined],
    ['Flash: [=====     ]  52.3% (used 959348 bytes from 1835008 bytes)', undefined],
    ['========================= [SUCCESS] Took 2.00 seconds =========================', 100],
    ['INFO Successfully compiled program.', 100],
    ['========================= [FAILED] Took 2.00 seconds =========================', undefined],
    ['Writing at 0x00010000... (45 %)', undefined],
  ])('compile: %j → %s', (line, expected) => {
    expect(parseProgress(line, 'compile')).toBe(expected);
  });

  it.each<[string, number | undefined]>([
    ['Writing at 0x00010000... (2 %)', 2],
    ['Writing at 0x000f2c3a... (45 %)', 45],
    ['Writing at 0x00102c3a... (100 %)', 100],
    ['Writing at 0x0003a2e8 [=================>            ]  61.3% 393216/641234 bytes...', 61],
    ['Uploading: [===========================                                 ] 45% ', 45],
    [`Uploading: [${'='.repeat(60)}] 100% Done...`, 100],
    ['Hash of data verified.', undefined],
    ['INFO Uploading /data/build/kitchen/.pioenvs/kitchen/firmware.bin (959348 bytes)', undefined],
    ['INFO OTA successful', 100],
    ['INFO Successfully uploaded program.', 100],
    ['[907/1424] Compiling x.o', undefined],
    ['INFO Compiling app...', undefined],
  ])('upload: %j → %s', (line, expected) => {
    expect(parseProgress(line, 'upload')).toBe(expected);
  });

  it('ninja counters rise monotonically within 10–99', () => {
    let previous = 0;
    for (let step = 1; step <= 1424; step++) {
      const value = parseProgress(`[${step}/1424] Compiling f${step}.o`, 'compile');
      expect(value).toBeDefined();
      expect(value!).toBeGreaterThanOrEqual(Math.max(previous, 10));
      expect(value!).toBeLessThanOrEqual(99);
      previous = value!;
    }
  });
});
