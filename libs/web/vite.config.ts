import { defineConfig } from 'vite';

// The page is served by the gateway from dist/www; every asset is bundled (no CDN, no web fonts),
// so it works on a NAS without internet access.
export default defineConfig({
  root: 'app',
  // Absolute asset URLs: the gateway answers index.html for any extension-less path, at any depth.
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../dist/www',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
