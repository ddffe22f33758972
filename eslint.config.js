// ESLint flat config: typescript-eslint's recommended rules over src, tests and bench.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    files: ['src/cpu/**', 'src/mmu/**', 'src/memory/**', 'src/process/**', 'src/machine/**', 'src/devices/**', 'src/vmm/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'The core must not import node: modules; use a host adapter.' }] }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
);
