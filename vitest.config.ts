import { availableParallelism } from 'node:os'
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
    // At least two test files at a time. Vitest's default is one fewer than the cores — one file at a
    // time on the 2-core machines CI runs on — while most suites spend their time waiting on
    // PostgreSQL's commits, loopback servers and child processes (a clean-clone CI took 19 min so).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // A worker keeps its imported modules from one test file to the next instead of importing the
    // whole graph again for each (test run 792 → 648 s on a 2-core machine). So no test file may
    // mock a module or stub a global (test/self-contained.test.ts fails on vi.mock and the like).
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
