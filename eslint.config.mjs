import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/dist/**', '**/node_modules/**', '**/src/gen/**', '**/*.d.ts'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.mjs'],
    plugins: { '@nx': nx },
    rules: {
      // A service library reaches another service only through contracts or the bus.
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          depConstraints: [
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:contracts', onlyDependOnLibsWithTags: ['scope:shared', 'scope:contracts'] },
            { sourceTag: 'scope:service', onlyDependOnLibsWithTags: ['scope:shared', 'scope:contracts'] },
            { sourceTag: 'scope:host', onlyDependOnLibsWithTags: ['scope:shared', 'scope:contracts'] },
            { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:shared', 'scope:contracts', 'scope:host', 'scope:service', 'scope:web'] },
            // The web page runs in a browser: it talks to Kiln only over the public WebSocket API.
            { sourceTag: 'scope:web', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'scope:tool', onlyDependOnLibsWithTags: ['scope:shared', 'scope:contracts', 'scope:service', 'scope:host', 'scope:tool'] },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Node 22/24 load undici (with tls and http2, 11-14 MB of RSS) for an ESM import of node:http:
    // Kiln's processes take it from @kiln/core's nodeHttp (see libs/core/src/node-http.ts).
    files: ['libs/*/src/**/*.ts', 'apps/*/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: 'node:http', message: "use nodeHttp from '@kiln/core' (an ESM import of node:http loads undici on Node 22+)", allowTypeImports: true }] },
      ],
    },
  },
  {
    // Tests wire real services together (a firmware test runs a real log store and the simulator).
    files: ['**/test/**/*.ts', '**/test/**/*.mjs'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          depConstraints: [
            { sourceTag: '*', onlyDependOnLibsWithTags: ['scope:shared', 'scope:contracts', 'scope:service', 'scope:host', 'scope:tool', 'scope:web'] },
          ],
        },
      ],
    },
  },
];
