import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { v } from '@kiln/config';
import { KilnError, pathExists } from '@kiln/core';
import {
  AUTOMATION_KINDS,
  AUTOMATION_SLIM_FIELDS,
  automationBodySchema,
  automationSlimSchemas,
  BOARD_SLIM_FIELDS,
  boardBodySchema,
  boardSlimSchema,
  COMPONENT_SLIM_FIELDS,
  componentBodySchema,
  componentSlimSchema,
  pick,
  type AutomationKind,
  type Section,
} from '../format/index.js';

/** One catalog entry read from upstream: its slim index projection and its full body. */
export interface SourceEntry {
  section: Section;
  kind?: AutomationKind;
  slim: Record<string, unknown>;
  body: Record<string, unknown>;
}

/** One section of one upstream source: how many entries, and a reader that validates as it goes. */
export interface SectionSource {
  section: Section;
  origin: string;
  count: number;
  version: string | undefined;
  entries(): AsyncIterable<SourceEntry>;
}

export interface UpstreamSource {
  sections: SectionSource[];
  platformCapabilities?: Record<string, unknown>;
  pinRegistryModes?: Record<string, string[]>;
}

/** Upstream's split tree (`definitions/`): slim index files + one body file per entry. */
const SPLIT_MARKER = 'components.index.json';
/** Upstream's monolithic files, by name, in a directory. */
const MONOLITHIC_FILES = ['components.json', 'automations.json', 'boards.json'];

/** Read one `--from` path: a split tree, a directory of monolithic files, or one monolithic file. */
export async function openUpstreamSource(path: string): Promise<UpstreamSource> {
  const info = await stat(path).catch(() => {
    throw new KilnError('not_found', `--from ${path}: no such file or directory`, { path });
  });
  if (info.isFile()) return monolithicSource([path]);
  if (await pathExists(join(path, SPLIT_MARKER))) return splitTreeSource(path);
  const files = [];
  for (const name of MONOLITHIC_FILES) if (await pathExists(join(path, name))) files.push(join(path, name));
  if (files.length === 0) {
    throw new KilnError('invalid_args', `--from ${path}: neither an upstream definitions tree (${SPLIT_MARKER}) nor monolithic ${MONOLITHIC_FILES.join('/')}`, {
      path,
    });
  }
  return { ...(await monolithicSource(files)), ...(await extrasIn(path)) };
}

/** The small eager extras upstream keeps beside its catalog, when a directory has them. */
async function extrasIn(dir: string): Promise<Pick<UpstreamSource, 'platformCapabilities' | 'pinRegistryModes'>> {
  const capabilitiesPath = join(dir, 'platform_capabilities.index.json');
  const pinModesPath = join(dir, 'pin_registry_modes.index.json');
  return {
    ...((await pathExists(capabilitiesPath)) ? { platformCapabilities: objectOf(await readJsonFile(capabilitiesPath), capabilitiesPath) } : {}),
    ...((await pathExists(pinModesPath)) ? { pinRegistryModes: parseWith(pinModesSchema, await readJsonFile(pinModesPath), pinModesPath) } : {}),
  };
}

async function splitTreeSource(root: string): Promise<UpstreamSource> {
  const sections: SectionSource[] = [];
  const components = await readJsonFile(join(root, 'components.index.json'));
  const componentList = listField(components, 'components', join(root, 'components.index.json'));
  sections.push({
    section: 'components',
    origin: join(root, 'components.index.json'),
    count: componentList.length,
    version: versionOf(components, 'esphome_schema_version'),
    entries: () => splitEntries(componentList, join(root, 'components.index.json'), 'components', undefined, (id) => join(root, 'components', `${id}.json`)),
  });
  const automationsPath = join(root, 'automations.index.json');
  if (await pathExists(automationsPath)) {
    const automations = await readJsonFile(automationsPath);
    const lists = AUTOMATION_KINDS.map((kind) => [kind, listField(automations, kind, automationsPath)] as const);
    sections.push({
      section: 'automations',
      origin: automationsPath,
      count: lists.reduce((n, [, list]) => n + list.length, 0),
      version: versionOf(automations, 'esphome_schema_version'),
      entries: async function* () {
        for (const [kind, list] of lists) yield* splitEntries(list, automationsPath, 'automations', kind, (id) => join(root, 'automations', kind, `${id}.json`));
      },
    });
  }
  const boardsPath = join(root, 'boards.index.json');
  if (await pathExists(boardsPath)) {
    const boards = await readJsonFile(boardsPath);
    const list = listField(boards, 'boards', boardsPath);
    sections.push({
      section: 'boards',
      origin: boardsPath,
      count: list.length,
      version: versionOf(boards, 'esphome_version'),
      entries: () => splitEntries(list, boardsPath, 'boards', undefined, (id) => join(root, 'board_bodies', `${id}.json`)),
    });
  }
  return { sections, ...(await extrasIn(root)) };
}

const pinModesSchema = v.record(v.string(), v.array(v.string('must be a string'), 'must be a list of modes'));

/** Each slim entry of an upstream index, checked, with its body file read and checked against it. */
async function* splitEntries(
  list: unknown[],
  indexPath: string,
  section: Section,
  kind: AutomationKind | undefined,
  bodyFile: (id: string) => string,
): AsyncGenerator<SourceEntry> {
  const slimSchema = slimSchemaFor(section, kind);
  for (const [i, raw] of list.entries()) {
    const where = `${indexPath}: ${kind ?? section}[${i}]${idSuffix(raw)}`;
    const slim = parseWith(slimSchema, raw, where);
    const file = bodyFile(slim.id);
    const bodyRaw = await readJsonFile(file).catch((err: unknown) => {
      if (err instanceof KilnError && err.code === 'not_found') {
        throw new KilnError('invalid_args', `${where}: its body ${file} is missing`, { entry: slim.id, file });
      }
      throw err;
    });
    const body = parseWith(bodySchemaFor(section), bodyRaw, file);
    if (body.id !== slim.id) {
      throw new KilnError('invalid_args', `${file}: body id ${JSON.stringify(body.id)} does not match the index entry ${JSON.stringify(slim.id)}`, {
        entry: slim.id,
        file,
      });
    }
    yield { section, ...(kind ? { kind } : {}), slim, body };
  }
}

/** Monolithic files hold full bodies; the slim entry is their projection. The section is told by the top-level keys. */
async function monolithicSource(files: string[]): Promise<UpstreamSource> {
  const sections: SectionSource[] = [];
  for (const file of files) {
    const doc = objectOf(await readJsonFile(file), file);
    if (Array.isArray(doc['components'])) {
      const list = doc['components'] as unknown[];
      sections.push({ section: 'components', origin: file, count: list.length, version: versionOf(doc, 'esphome_schema_version'), entries: () => monolithicEntries(list, file, 'components', undefined) });
    } else if (AUTOMATION_KINDS.some((k) => Array.isArray(doc[k]))) {
      const lists = AUTOMATION_KINDS.map((kind) => [kind, listField(doc, kind, file)] as const);
      sections.push({
        section: 'automations',
        origin: file,
        count: lists.reduce((n, [, list]) => n + list.length, 0),
        version: versionOf(doc, 'esphome_schema_version'),
        entries: async function* () {
          for (const [kind, list] of lists) yield* monolithicEntries(list, file, 'automations', kind);
        },
      });
    } else if (Array.isArray(doc['boards'])) {
      const list = doc['boards'] as unknown[];
      sections.push({ section: 'boards', origin: file, count: list.length, version: versionOf(doc, 'esphome_version'), entries: () => monolithicEntries(list, file, 'boards', undefined) });
    } else {
      throw new KilnError('invalid_args', `${file}: not an upstream catalog file (expected a "components", "boards" or automation kind list at the top level)`, {
        file,
        keys: Object.keys(doc).slice(0, 10),
      });
    }
  }
  return { sections };
}

async function* monolithicEntries(list: unknown[], file: string, section: Section, kind: AutomationKind | undefined): AsyncGenerator<SourceEntry> {
  const slimSchema = slimSchemaFor(section, kind);
  const fields = section === 'components' ? COMPONENT_SLIM_FIELDS : section === 'boards' ? BOARD_SLIM_FIELDS : AUTOMATION_SLIM_FIELDS[kind!];
  for (const [i, raw] of list.entries()) {
    const where = `${file}: ${kind ?? section}[${i}]${idSuffix(raw)}`;
    const body = parseWith(bodySchemaFor(section), raw, where);
    const slim = parseWith(slimSchema, pick(body, fields), where);
    yield { section, ...(kind ? { kind } : {}), slim, body };
  }
}

function slimSchemaFor(section: Section, kind: AutomationKind | undefined) {
  if (section === 'components') return componentSlimSchema;
  if (section === 'boards') return boardSlimSchema;
  return automationSlimSchemas[kind!];
}

function bodySchemaFor(section: Section) {
  if (section === 'components') return componentBodySchema;
  if (section === 'boards') return boardBodySchema;
  return automationBodySchema;
}

/** Validate, naming the place, the field path and the offending value. */
function parseWith<S extends v.GenericSchema>(schema: S, value: unknown, where: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = (issue.path ?? []).map((p) => String(p.key)).join('.') || '(entry)';
  if (issue.input === undefined) throw new KilnError('invalid_args', `${where}: ${path}: is missing`, { where, field: path });
  const shown = JSON.stringify(issue.input)?.slice(0, 120) ?? String(issue.input);
  throw new KilnError('invalid_args', `${where}: ${path}: ${issue.message} (got ${shown})`, { where, field: path });
}

function idSuffix(raw: unknown): string {
  const id = raw && typeof raw === 'object' ? (raw as Record<string, unknown>)['id'] : undefined;
  return typeof id === 'string' ? ` (${JSON.stringify(id.slice(0, 80))})` : '';
}

async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(code === 'ENOENT' ? 'not_found' : 'internal_error', `${path}: cannot read (${code ?? (err as Error).message})`, { path });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new KilnError('invalid_args', `${path}: not valid JSON (${(err as Error).message})`, { path });
  }
}

function objectOf(value: unknown, where: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new KilnError('invalid_args', `${where}: must be a JSON object`, { where });
  return value as Record<string, unknown>;
}

function listField(doc: unknown, field: string, where: string): unknown[] {
  const list = objectOf(doc, where)[field];
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new KilnError('invalid_args', `${where}: ${field}: must be a list`, { where, field });
  return list;
}

function versionOf(doc: unknown, field: string): string | undefined {
  const value = (doc as Record<string, unknown>)[field];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

