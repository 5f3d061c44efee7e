import { invalidArgs } from './errors.js';

/**
 * Bounds on YAML that users hand to Kiln (a device config sent over the API, the files a config
 * includes), checked by one linear scan of the text before any YAML parser runs. The `yaml` parser
 * keeps a stack entry and several objects per open collection: 1 MiB of `[[[[…` takes it 7 s and
 * over 600 MB, and a million-item flow list about as much. A real ESPHome config nests under 15
 * levels and has a few thousand nodes, so these limits refuse nothing a device needs.
 */
export const YAML_LIMITS = {
  /** Bytes of one YAML text (the API's `devices/update_config` content limit too). */
  maxBytes: 1024 * 1024,
  /** Collections open at once: block indentation levels plus `[`/`{` flow brackets. */
  maxDepth: 64,
  /** Nodes (lines of block content, sequence entries, flow items): 50,000 cost the parser about 70 MB at the peak. */
  maxNodes: 50_000,
} as const;

/**
 * A device config's content over `YAML_LIMITS.maxBytes` → invalid_args. Checked by the devices
 * service and, before the content crosses the bus (whose messages have their own cap on NATS), by
 * the gateway, so either refuses it the same way.
 */
export function assertConfigContentSize(content: string, field = 'content'): void {
  if (Buffer.byteLength(content, 'utf8') > YAML_LIMITS.maxBytes) throw invalidArgs(field, `${content.slice(0, 40)}...`, 'must be at most 1 MiB');
}

/**
 * Why `text` is refused before parsing (naming the limit and the line), or undefined when it is
 * within `YAML_LIMITS`. The scan knows just enough YAML to count nesting: block indentation
 * (compact `- - x` entries too), flow brackets outside quoted scalars, comments and block scalars
 * (`|`, `>`, whose lines are text). It may count a level or two more than the parser on odd
 * layouts, never fewer on the nesting that makes a parse expensive.
 */
export function yamlLimitExceeded(text: string): string | undefined {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > YAML_LIMITS.maxBytes) return `is ${bytes} bytes, over the limit of ${YAML_LIMITS.maxBytes} bytes for YAML`;
  return new NestingScan(text).run();
}

class NestingScan {
  private readonly lines: string[];
  /** Columns of the block collections open before the current line. */
  private readonly block: number[] = [];
  private flow = 0;
  private quote: '"' | "'" | undefined;
  /** While set, more indented (and blank) lines are the text of a `|` / `>` block scalar. */
  private blockScalarIndent: number | undefined;
  /** In a flow collection: the next quote opens a scalar (after `[`, `{`, `,`, `:`). */
  private nodeStart = false;
  private nodes = 0;
  private lineNo = 0;

  constructor(text: string) {
    this.lines = text.split(/\r?\n/);
  }

  run(): string | undefined {
    for (let i = 0; i < this.lines.length; i++) {
      this.lineNo = i + 1;
      const refused = this.line(this.lines[i]!);
      if (refused) return refused;
    }
    return undefined;
  }

  private line(line: string): string | undefined {
    let pos = 0;
    if (this.quote || this.flow > 0) pos = this.inline(line, 0);
    else {
      const indent = leadingSpaces(line);
      const blank = indent === line.length || line[indent] === '#';
      if (this.blockScalarIndent !== undefined) {
        if (blank || indent > this.blockScalarIndent) return undefined;
        this.blockScalarIndent = undefined;
      }
      if (blank || line[0] === '%') return undefined;
      if (/^(---|\.\.\.)(\s|$)/.test(line)) {
        this.block.length = 0; // a new document
        pos = this.atNodeStart(line, 3, indent);
      } else {
        while (this.block.length > 0 && this.block[this.block.length - 1]! > indent) this.block.pop();
        if (this.block[this.block.length - 1] !== indent) this.block.push(indent);
        this.nodes++;
        pos = this.atNodeStart(line, indent, indent);
      }
    }
    return pos < 0 || this.limitsHit() ? this.refusal() : undefined;
  }

  /**
   * From a place where a node may start: compact entries (`- `, `? `, `: `) open a level each,
   * properties (`!tag`, `&anchor`) are skipped, then a flow collection, quoted scalar, block
   * scalar or plain scalar follows. Returns where the line was left, or -1 past a limit.
   */
  private atNodeStart(line: string, from: number, lineIndent: number): number {
    let i = from;
    for (;;) {
      while (line[i] === ' ' || line[i] === '\t') i++;
      const c = line[i];
      if (c === undefined || c === '#') return i;
      const next = line[i + 1];
      const separated = next === undefined || next === ' ' || next === '\t';
      if ((c === '-' || c === '?' || c === ':') && separated) {
        i++;
        while (line[i] === ' ' || line[i] === '\t') i++;
        if (i < line.length && line[i] !== '#') {
          this.block.push(i);
          this.nodes++;
          if (this.limitsHit()) return -1;
        }
        continue;
      }
      if (c === '!' || c === '&') {
        while (i < line.length && line[i] !== ' ' && line[i] !== '\t') i++;
        continue;
      }
      if (c === '|' || c === '>') {
        this.blockScalarIndent = lineIndent;
        return line.length;
      }
      if (c === '[' || c === '{' || c === '"' || c === "'") {
        this.nodeStart = true;
        return this.inline(line, i);
      }
      return this.plain(line, i, lineIndent);
    }
  }

  /** A plain scalar in block context (brackets in it are text); `: ` after it starts a value on the same line. */
  private plain(line: string, from: number, lineIndent: number): number {
    for (let i = from; i < line.length; i++) {
      const c = line[i]!;
      const next = line[i + 1];
      if (c === '#' && (line[i - 1] === ' ' || line[i - 1] === '\t')) return line.length;
      if (c === ':' && (next === undefined || next === ' ' || next === '\t')) return this.atNodeStart(line, i + 1, lineIndent);
    }
    return line.length;
  }

  /**
   * Flow collections and quoted scalars, which may span lines: brackets count only outside quotes,
   * and a quote opens a scalar only where a node starts (`it's` in a flow list is plain text).
   */
  private inline(line: string, from: number): number {
    for (let i = from; i < line.length; i++) {
      const c = line[i]!;
      if (this.quote) {
        if (this.quote === '"' && c === '\\') i++;
        else if (this.quote === "'" && c === "'" && line[i + 1] === "'") i++;
        else if (c === this.quote) {
          this.quote = undefined;
          if (this.flow === 0) return this.afterInline(line, i + 1);
        }
        continue;
      }
      if (c === ' ' || c === '\t') continue;
      if (c === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) return line.length;
      if (this.nodeStart && (c === '"' || c === "'")) {
        this.quote = c;
        this.nodes++;
        this.nodeStart = false;
      } else if (c === '[' || c === '{') {
        this.flow++;
        this.nodes++;
        this.nodeStart = true;
        if (this.limitsHit()) return -1;
      } else if (c === ']' || c === '}') {
        this.flow = Math.max(0, this.flow - 1);
        this.nodeStart = false;
        if (this.flow === 0) return this.afterInline(line, i + 1);
      } else if (c === ',' || c === ':') {
        if (c === ',') this.nodes++;
        this.nodeStart = true;
        if (this.limitsHit()) return -1;
      } else this.nodeStart = false;
    }
    return line.length;
  }

  /** After a block-context flow collection or quoted scalar closed: a key's `:` starts its value on this line. */
  private afterInline(line: string, from: number): number {
    let i = from;
    while (line[i] === ' ' || line[i] === '\t') i++;
    return line[i] === ':' ? this.atNodeStart(line, i + 1, leadingSpaces(line)) : line.length;
  }

  private limitsHit(): boolean {
    return this.block.length + this.flow > YAML_LIMITS.maxDepth || this.nodes > YAML_LIMITS.maxNodes;
  }

  private refusal(): string | undefined {
    if (this.nodes > YAML_LIMITS.maxNodes) return `has more than ${YAML_LIMITS.maxNodes} nodes (at line ${this.lineNo}), over the limit for YAML`;
    if (this.block.length + this.flow > YAML_LIMITS.maxDepth) return `nests collections deeper than the limit of ${YAML_LIMITS.maxDepth} levels for YAML (at line ${this.lineNo})`;
    return undefined;
  }
}

function leadingSpaces(line: string): number {
  let i = 0;
  while (line[i] === ' ') i++;
  return i;
}
