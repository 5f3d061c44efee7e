/**
 * Progress 0–100 from one line of toolchain output, or undefined when the line says nothing
 * about progress. Compile: esphome's phase lines, then ninja counters mapped into 10–99, then
 * 100 on success. Upload: esptool's `Writing at ... (45 %)` and esphome's OTA bar.
 */
export function parseProgress(line: string, action: 'compile' | 'upload'): number | undefined {
  return action === 'compile' ? compileProgress(line) : uploadProgress(line);
}

const COMPILE_PHASES: readonly [RegExp, number][] = [
  [/^INFO Reading configuration\b/, 2],
  [/^INFO Generating C\+\+ source\b/, 5],
  [/^INFO Compiling app\b/, 10],
];
const NINJA = /^\s*\[(\d+)\/(\d+)\]\s/;
const COMPILE_DONE = /\[SUCCESS\]|^INFO Successfully compiled program\b/;

const ESPTOOL = /^Writing at 0x[0-9a-fA-F]+\b.*?(\d+(?:\.\d+)?)\s*%/;
const OTA_BAR = /^Uploading:\s*\[[= ]*\]\s*(\d+(?:\.\d+)?)\s*%/;
const UPLOAD_DONE = /^INFO (Successfully uploaded program|OTA successful)\b/;

function compileProgress(line: string): number | undefined {
  for (const [pattern, value] of COMPILE_PHASES) if (pattern.test(line)) return value;
  if (COMPILE_DONE.test(line)) return 100;
  const ninja = NINJA.exec(line);
  if (ninja !== null) {
    const done = Number(ninja[1]);
    const total = Number(ninja[2]);
    if (total <= 0 || done > total) return undefined;
    // 10–99: the build is the bulk of a compile, and 100 is kept for the success line.
    return 10 + Math.floor((done / total) * 89);
  }
  return undefined;
}

function uploadProgress(line: string): number | undefined {
  if (UPLOAD_DONE.test(line)) return 100;
  const match = ESPTOOL.exec(line) ?? OTA_BAR.exec(line);
  if (match === null) return undefined;
  return clamp(Math.floor(Number(match[1])));
}

function clamp(value: number): number {
  return Math.min(100, Math.max(0, value));
}
