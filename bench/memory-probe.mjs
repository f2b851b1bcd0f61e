/**
 * Loaded into the server by bench/memory.ts (`NODE_OPTIONS=--import=…/memory-probe.mjs`): once a
 * second, appends the process's memory as one JSON line to BENCH_MEMORY_PROBE — RSS,
 * process.memoryUsage() and the size of each V8 heap space — so the bench can say where the RSS
 * went (young generation, old generation, Buffers, or native memory outside V8). Only in the server
 * process: npm and the bundler child (`start.mjs --bundle`) get NODE_OPTIONS too and are skipped.
 *
 * On SIGUSR2 (the server does not use it) it forces full garbage collections — V8's gc(), reached
 * without `--expose-gc` on the command line (no global `gc` for the server's code to see): the flag
 * set at run time, then taken from a fresh vm context — twice, so that what only a finalizer or weak
 * callback of the first one frees goes too, and appends a line with `gc` (how many it has forced
 * so far) and `gcMs` (how long they took), the memory just after them. The bench waits for that
 * line, then lets V8's concurrent sweeping and unmapping finish before it samples the RSS.
 */
import { appendFileSync } from 'node:fs'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const file = process.env.BENCH_MEMORY_PROBE
const isServer = process.argv[1]?.endsWith('start.mjs') && !process.argv.includes('--bundle')

/** One memory sample: RSS, process.memoryUsage() and each V8 heap space's size, in bytes. */
function sample(extra) {
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]),
  )
  return `${JSON.stringify({ ...process.memoryUsage(), spaces, ...extra })}\n`
}

if (file && isServer) {
  setInterval(() => appendFileSync(file, sample()), 1000).unref()
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc')
  let forced = 0
  // A signal listener does not keep the process alive.
  process.on('SIGUSR2', () => {
    const started = performance.now()
    gc()
    gc()
    forced++
    appendFileSync(file, sample({ gc: forced, gcMs: performance.now() - started }))
  })
}
