/**
 * Conclusions drawn from individual output lines. They are taken when a line is appended, never by
 * re-scanning the buffer afterwards: the in-flight trim may already have dropped the line by the
 * time the job exits, and the verdict must survive that.
 */
export interface OutputVerdicts {
  /** A line carried CPython's `No module named 'esphome'`: the toolchain cannot import esphome. */
  readonly noEsphomeModule: boolean;
  /** A line reported a full disk (Python's `[Errno 28] No space left on device`, Node's `ENOSPC`, quota, read-only). */
  readonly noSpace: boolean;
}

/**
 * CPython's exact ModuleNotFoundError text for the top-level package (it quotes the name with
 * repr). Why exact, quote included: a looser "No module named" + "esphome" test also fires on
 * sibling modules (`'esphome_dashboard'`, `'esphome_glyphsets'`) where esphome itself imports fine
 * and the install hint would send the user the wrong way. A missing `esphome.x` submodule with
 * esphome absent is still reported by CPython as `'esphome'`, so nothing real is lost.
 */
const NO_ESPHOME_MODULE = "No module named 'esphome'";

/** `python3 -m esphome` without esphome: the interpreter prints the name unquoted, at the end of the line. */
const NO_ESPHOME_MODULE_RUNPY = /: No module named esphome$/;

export function isNoEsphomeModuleLine(line: string): boolean {
  return line.includes(NO_ESPHOME_MODULE) || NO_ESPHOME_MODULE_RUNPY.test(line);
}

/** The actionable message for the noEsphomeModule verdict, in place of a generic "exited with errors". */
export const NO_ESPHOME_MODULE_HINT =
  "esphome is not importable from Kiln's toolchain environment (Python reported \"No module named 'esphome'\"). " +
  'Install it into the Python environment Kiln runs the toolchain with (`pip install esphome`), ' +
  'or point the firmware.toolchain setting at an esphome installation.';

/** How Python (esphome, PlatformIO, gcc) and Node (the simulator) say a write hit a full or read-only disk. */
const NO_SPACE_LINE = /No space left on device|Disk quota exceeded|Read-only file system|\b(ENOSPC|EDQUOT|EROFS)\b/;

export function isNoSpaceLine(line: string): boolean {
  return NO_SPACE_LINE.test(line);
}
