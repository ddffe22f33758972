// ESLint flat config: typescript-eslint's recommended rules over src, tests and bench.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

/**
 * The core layers: they run anywhere JavaScript does (a browser tab, a
 * worker), so they import only each other — never a node: module, never
 * the host adapters, the image tools or the CLI, which would pull node:
 * modules in transitively. Host services are passed in (src/vmm/services.ts).
 */
export const CORE_LAYERS = ['src/cpu', 'src/mmu', 'src/memory', 'src/jit', 'src/devices', 'src/machine', 'src/process', 'src/vmm'];
/** The layers above the core (and what the core must not import). */
const HIGHER_LAYERS = ['host', 'cli', 'images'];
const CORE_MESSAGE = 'The core must not import node: modules or the host, images or cli layers (directly or transitively); take a host service (src/vmm/services.ts).';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-labels': 'off',
      'no-fallthrough': 'error',
    },
  },
  {
    files: CORE_LAYERS.map((d) => `${d}/**`),
    rules: {
      'no-restricted-imports': ['error', {
        paths: builtinModules.map((name) => ({ name, message: CORE_MESSAGE })),
        patterns: [{
          group: ['node:*', ...HIGHER_LAYERS.flatMap((l) => [`../${l}/**`, `../../${l}/**`, `../../../${l}/**`])],
          message: CORE_MESSAGE,
        }],
      }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
);
