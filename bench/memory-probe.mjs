/**
 * Loaded into the server by bench/memory.ts (`NODE_OPTIONS=--import=…/memory-probe.mjs`): once a
 * second, appends the process's memory as one JSON line to BENCH_MEMORY_PROBE — RSS,
 * process.memoryUsage() and the size of each V8 heap space — so the bench can say where the RSS
 * went (young generation, old generation, Buffers, or native memory outside V8). Only in the server
 * process: npm and the bundler child (`start.mjs --bundle`) get NODE_OPTIONS too and are skipped.
 */
import { appendFileSync } from 'node:fs'
import { getHeapSpaceStatistics } from 'node:v8'

const file = process.env.BENCH_MEMORY_PROBE
const isServer = process.argv[1]?.endsWith('start.mjs') && !process.argv.includes('--bundle')
if (file && isServer)
  setInterval(() => {
    const spaces = Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]),
    )
    appendFileSync(file, `${JSON.stringify({ ...process.memoryUsage(), spaces })}\n`)
  }, 1000).unref()
