#!/usr/bin/env node
// Regenerates libs/contracts/src/gen from proto/ with buf + the local ts-proto plugin.
// `--check` generates into a temp dir and fails if the committed code differs (stale contracts).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const template = 'buf.gen.yaml';
// Relative to proto/, as the template names it.
const out = '../libs/contracts/src/gen';
const check = process.argv.includes('--check');
const buf = join(root, 'node_modules/.bin/buf');

function generate(workDir) {
  execFileSync(buf, ['lint'], { cwd: join(root, 'proto'), stdio: 'inherit' });
  const text = readFileSync(join(root, 'proto', template), 'utf8')
    .replaceAll('../node_modules/.bin/protoc-gen-ts_proto', join(root, 'node_modules/.bin/protoc-gen-ts_proto'))
    .replace(`out: ${out}\n`, `out: ${join(workDir, 'gen')}\n`);
  const templatePath = join(workDir, 'template.yaml');
  writeFileSync(templatePath, text);
  execFileSync(buf, ['generate', '--template', templatePath], { cwd: join(root, 'proto'), stdio: 'inherit' });
  rmSync(templatePath);
}

function listFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

const listOrEmpty = (dir) => (existsSync(dir) ? listFiles(dir) : []);
const work = mkdtempSync(join(tmpdir(), 'kiln-proto-'));
try {
  generate(work);
  const stale = [];
  const fresh = join(work, 'gen');
  const committed = join(root, 'proto', out);
  const freshFiles = listFiles(fresh);
  if (check) {
    const committedFiles = listOrEmpty(committed);
    for (const f of new Set([...freshFiles, ...committedFiles])) {
      const same = freshFiles.includes(f) && committedFiles.includes(f) && readFileSync(join(fresh, f), 'utf8') === readFileSync(join(committed, f), 'utf8');
      if (!same) stale.push(relative(root, join(committed, f)));
    }
  } else {
    rmSync(committed, { recursive: true, force: true });
    cpSync(fresh, committed, { recursive: true });
  }
  if (stale.length > 0) {
    console.error(`generated contracts are stale: ${stale.join(', ')}\nrun: npm run proto`);
    process.exit(1);
  }
  console.log(check ? `contracts up to date (${freshFiles.length} files)` : `generated ${freshFiles.length} files`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
