#!/usr/bin/env node
// Regenerates libs/contracts/src/gen from proto/ with buf + the local ts-proto plugin.
// `--check` generates into a temp dir and fails if the committed code differs (stale contracts).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
// One buf template per output dir (relative to proto/); each output is regenerated (or checked) as a whole.
// The gRPC template runs only on the protos that declare a service: nothing else needs grpc-js code.
const outputs = [
  { template: 'buf.gen.yaml', out: '../libs/contracts/src/gen', services: false },
  { template: 'buf.gen.grpc.yaml', out: '../libs/contracts/src/grpc/gen', services: true },
];

function protosWithServices() {
  return listFiles(join(root, 'proto'))
    .filter((f) => f.endsWith('.proto') && /^service\s/m.test(readFileSync(join(root, 'proto', f), 'utf8')));
}
const check = process.argv.includes('--check');
const buf = join(root, 'node_modules/.bin/buf');

function generate(workDir) {
  execFileSync(buf, ['lint'], { cwd: join(root, 'proto'), stdio: 'inherit' });
  outputs.forEach(({ template, out, services }, i) => {
    const text = readFileSync(join(root, 'proto', template), 'utf8')
      .replaceAll('../node_modules/.bin/protoc-gen-ts_proto', join(root, 'node_modules/.bin/protoc-gen-ts_proto'))
      .replace(`out: ${out}\n`, `out: ${join(workDir, String(i))}\n`);
    const templatePath = join(workDir, `template-${i}.yaml`);
    writeFileSync(templatePath, text);
    const paths = services ? protosWithServices().flatMap((p) => ['--path', p]) : [];
    execFileSync(buf, ['generate', '--template', templatePath, ...paths], { cwd: join(root, 'proto'), stdio: 'inherit' });
    rmSync(templatePath);
  });
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
  let count = 0;
  outputs.forEach(({ out }, i) => {
    const fresh = join(work, String(i));
    const committed = join(root, 'proto', out);
    const freshFiles = listFiles(fresh);
    count += freshFiles.length;
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
  });
  if (stale.length > 0) {
    console.error(`generated contracts are stale: ${stale.join(', ')}\nrun: npm run proto`);
    process.exit(1);
  }
  console.log(check ? `contracts up to date (${count} files)` : `generated ${count} files`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
