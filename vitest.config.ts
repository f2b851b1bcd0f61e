import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'src/**/*.test.ts',
      'handlers/**/*.test.ts',
      'jobs/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    globalSetup: ['test/console-assets.ts', 'test/pglite-template.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
