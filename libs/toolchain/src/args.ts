import { KilnError } from '@kiln/core';
import type { ToolchainAction } from './types.js';

/**
 * esphome argv for an action. The port and path are checked so a value starting with '-' can
 * never be read as an option by the CLI (argument injection through a device port or file name).
 */
export function actionArgs(action: ToolchainAction, configPath: string): string[] {
  assertOperand('configPath', configPath);
  switch (action.kind) {
    case 'compile':
    case 'clean':
    case 'config':
      return [action.kind, configPath];
    case 'upload':
      assertOperand('port', action.port);
      return ['upload', '--device', action.port, configPath];
    case 'run':
      assertOperand('port', action.port);
      return ['run', '--device', action.port, '--no-logs', configPath];
    case 'rename':
      assertOperand('newName', action.newName);
      return ['rename', configPath, action.newName];
  }
}

function assertOperand(field: string, value: string): void {
  if (typeof value !== 'string' || value === '' || value.startsWith('-') || value.includes('\0')) {
    throw new KilnError('invalid_args', `${field}: must be a non-empty value not starting with '-' (got ${JSON.stringify(value)})`, {
      field,
      value,
    });
  }
}
