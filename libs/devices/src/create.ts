import { invalidArgs } from '@kiln/core';
import { DEFAULT_BOARDS, KNOWN_PLATFORMS, isPlatform, type Platform } from './platforms.js';

export interface CreateArgs {
  /** The user's display label; the file and device name are derived from it. */
  name: string;
  platform?: string;
  board?: string;
  overwrite?: boolean;
}

export interface CreatePlan {
  configuration: string;
  slug: string;
  content: string;
  overwrite: boolean;
}

const MAX_LABEL = 64;
const BOARD = /^[A-Za-z0-9_.-]+$/;

/** Lower-case ASCII letters, digits and single dashes; accents fold to their base letter. */
export function slugify(label: string): string {
  return label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Validate `devices/create` arguments and render the new YAML; throws invalid_args naming the field. */
export function planCreate(args: CreateArgs): CreatePlan {
  const label = validateLabel(args?.name);
  const slug = slugify(label);
  if (slug === '') throw invalidArgs('name', args.name, 'must contain at least one letter or digit');
  const platform = validatePlatform(args.platform);
  const board = validateBoard(platform, args.board);
  if (args.overwrite !== undefined && typeof args.overwrite !== 'boolean') {
    throw invalidArgs('overwrite', args.overwrite, 'must be a boolean');
  }
  return { configuration: `${slug}.yaml`, slug, content: render(slug, label, platform, board), overwrite: args.overwrite === true };
}

function validateLabel(value: unknown): string {
  if (typeof value !== 'string') throw invalidArgs('name', value, 'must be a string');
  const label = value.trim();
  if (label.length === 0 || label.length > MAX_LABEL) throw invalidArgs('name', value, `must be 1-${MAX_LABEL} characters after trimming`);
  if (/[\x00-\x1f\x7f]/.test(label)) throw invalidArgs('name', value, 'must not contain control characters');
  return label;
}

function validatePlatform(value: unknown): Platform {
  if (value === undefined) return 'esp32';
  if (!isPlatform(value)) throw invalidArgs('platform', value, `must be one of ${KNOWN_PLATFORMS.join(', ')}`);
  return value;
}

function validateBoard(platform: Platform, value: unknown): string {
  if (platform === 'host') {
    if (value !== undefined) throw invalidArgs('board', value, 'the host platform takes no board');
    return '';
  }
  if (value === undefined) return DEFAULT_BOARDS[platform];
  if (typeof value !== 'string' || !BOARD.test(value)) throw invalidArgs('board', value, 'must be a non-empty board id of letters, digits, "_", "." or "-"');
  return value;
}

function render(slug: string, label: string, platform: Platform, board: string): string {
  // JSON string syntax is a valid YAML double-quoted scalar, so any label round-trips safely.
  const platformBlock = board === '' ? `${platform}:\n` : `${platform}:\n  board: ${board}\n`;
  return [
    `esphome:\n  name: ${slug}\n  friendly_name: ${JSON.stringify(label)}\n`,
    platformBlock,
    'logger:\n',
    'api:\n',
    'ota:\n  - platform: esphome\n',
    'wifi:\n  ssid: !secret wifi_ssid\n  password: !secret wifi_password\n',
  ].join('\n');
}
