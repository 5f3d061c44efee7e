import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { defineConfig, type Plugin } from 'vite';

const COMPRESSIBLE = /\.(html|js|css|svg|json)$/;

/**
 * A gzip twin (`<file>.gz`) beside each text file of the build, where it is smaller: the gateway sends
 * it to browsers that accept gzip, so nothing is compressed per request.
 */
function gzipTwins(): Plugin {
  return {
    name: 'kiln-gzip-twins',
    apply: 'build',
    async writeBundle(output, bundle) {
      if (!output.dir) return;
      for (const name of Object.keys(bundle).filter((n) => COMPRESSIBLE.test(n))) {
        const path = join(output.dir, name);
        const raw = await readFile(path);
        const packed = await promisify(gzip)(raw, { level: 9 });
        if (packed.length < raw.length) await writeFile(`${path}.gz`, packed);
      }
    },
  };
}

// The page is served by the gateway from dist/www; every asset is bundled (no CDN, no web fonts),
// so it works on a NAS without internet access.
export default defineConfig({
  root: 'app',
  // Absolute asset URLs: the gateway answers index.html for any extension-less path, at any depth.
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  plugins: [gzipTwins()],
  build: {
    outDir: '../dist/www',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
