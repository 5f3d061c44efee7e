import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gatewayCommands } from '../src/commands/index.js';
import { STOP_STREAM } from '../src/ws/connection.js';

const API_MD = fileURLToPath(new URL('../../../docs/API.md', import.meta.url));
/** Upstream's command list (never copied into the repository): ../shared beside the checkout. */
const UPSTREAM_TSV = fileURLToPath(new URL('../../../../shared/data/esphome-catalog/device-builder-api.tsv', import.meta.url));
const HAVE_TSV = existsSync(UPSTREAM_TSV);

const SERVED = new Set([...Object.keys(gatewayCommands), STOP_STREAM]);
const STATUSES = ['same shape', 'served, shape differs', 'missing', 'extension'] as const;
type Status = (typeof STATUSES)[number];

/** The lines under a markdown heading, up to the next heading (a subsection is a section of its own). */
function section(markdown: string, heading: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) throw new Error(`docs/API.md has no section "${heading}"`);
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Cells of a table row; `\|` inside a cell is not a separator. */
const cells = (row: string): string[] =>
  row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

/** Body rows of every table in `lines` whose header's first cell is `firstHeader`. */
function tableRows(lines: string[], firstHeader: string): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const row = cells(line);
    if (row[0] === firstHeader) inTable = true;
    else if (inTable && !/^-+$/.test(row[0] ?? '')) rows.push(row);
  }
  return rows;
}

/**
 * Command names a first cell documents: `` `a/b` `` or `` `ns/x` / `y` / `z` `` (the later names take the
 * first one's namespace: `automations/get_triggers` / `get_actions` is two commands).
 */
function commandNames(cell: string): string[] {
  const names = [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  const namespace = names[0]?.includes('/') ? names[0].slice(0, names[0].indexOf('/') + 1) : '';
  return names.map((n, i) => (i > 0 && !n.includes('/') ? namespace + n : n));
}

const duplicates = (names: string[]) => names.filter((n, i) => names.indexOf(n) !== i);

const apiMd = readFileSync(API_MD, 'utf8');
const webSocket = section(apiMd, '## WebSocket');
const referenced = tableRows(webSocket, 'command').flatMap((r) => commandNames(r[0]!));
const conformance = section(apiMd, '### Conformance with upstream');
const conformanceRows = [...tableRows(conformance, 'upstream name'), ...tableRows(conformance, 'command')].map((r) => {
  const names = commandNames(r[0]!);
  if (names.length !== 1) throw new Error(`a conformance row names one command, not ${JSON.stringify(r[0])}`);
  return { name: names[0]!, status: r[1] as Status, notes: r[2] ?? '' };
});

describe('docs/API.md and the commands the gateway serves', () => {
  it('the WebSocket reference table documents every served command once', () => {
    expect(duplicates(referenced), 'documented twice').toEqual([]);
    expect([...SERVED].filter((c) => !referenced.includes(c)), 'served but not in the reference table').toEqual([]);
  });

  it('the WebSocket reference table documents no command the gateway does not serve', () => {
    expect(referenced.filter((c) => !SERVED.has(c)), 'documented but not served').toEqual([]);
  });

  it("the conformance table's statuses agree with what is served", () => {
    for (const row of conformanceRows) {
      expect(STATUSES, `status of ${row.name}`).toContain(row.status);
      if (row.status === 'missing') {
        expect(SERVED.has(row.name), `${row.name} is served, not missing`).toBe(false);
        expect(row.notes, `${row.name}: which open issue covers it`).toMatch(/#\d+/);
      } else {
        expect(SERVED.has(row.name), `${row.name} is ${row.status} but not served`).toBe(true);
      }
    }
    const extensions = conformanceRows.filter((r) => r.status === 'extension').map((r) => r.name);
    const upstream = conformanceRows.filter((r) => r.status !== 'extension').map((r) => r.name);
    expect(duplicates([...extensions, ...upstream]), 'listed twice').toEqual([]);
    expect([...SERVED].filter((c) => !extensions.includes(c) && !upstream.includes(c)), 'served but in neither table').toEqual([]);
  });

  it('the counts stated above the conformance table are the rows below it', () => {
    const text = conformance.join(' ');
    const stated = /(\d+) upstream commands.*?(\d+) served in the same shape, (\d+) served with a different shape, (\d+) missing\. Kiln adds (\d+) extensions/.exec(text);
    expect(stated, 'the counts sentence').not.toBeNull();
    const count = (s: Status) => conformanceRows.filter((r) => r.status === s).length;
    const [, total, same, differs, missing, extensions] = stated!.map(Number);
    expect({ total, same, differs, missing, extensions }).toEqual({
      total: conformanceRows.length - count('extension'),
      same: count('same shape'),
      differs: count('served, shape differs'),
      missing: count('missing'),
      extensions: count('extension'),
    });
  });

  describe.skipIf(!HAVE_TSV && process.env['CI'] !== 'true')("upstream's command list (../shared)", () => {
    it('the conformance table lists every upstream command exactly once, and none as an extension', () => {
      if (!HAVE_TSV) throw new Error(`upstream command list not found at ${UPSTREAM_TSV} (../shared beside the checkout)`);
      const tsv = readFileSync(UPSTREAM_TSV, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.split('\t')[0]!.trim());
      const listed = conformanceRows.map((r) => r.name);
      expect(tsv.filter((c) => listed.filter((n) => n === c).length !== 1), 'not listed exactly once').toEqual([]);
      expect(conformanceRows.filter((r) => r.status === 'extension' && tsv.includes(r.name)).map((r) => r.name), 'upstream commands marked as extensions').toEqual([]);
    });
  });
});
