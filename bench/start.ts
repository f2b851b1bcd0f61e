/**
 * `npm run bench:start`: how long `npm start` takes to answer `/healthz`, cold (an empty data
 * folder: the embedded database created and every migration applied) and warm (the same folder
 * again), `BENCH_RUNS` times each (default 5), median reported; and how long SIGTERM to the
 * `npm start` PID takes to end it. The baseline, measured in the same run: `npm start`'s floor —
 * npm launching a bare node:http server that answers its first request.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { untilHealthy } from './healthz.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const PORT = Number(process.env.BENCH_PORT ?? 3499)
const root = new URL('..', import.meta.url).pathname

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** Starts `npm <args>`, waits for the first 200 from /healthz, then SIGTERMs the npm PID. */
async function once(args: string[], env: Record<string, string>, cwd = root) {
  const started = performance.now()
  const child = spawn('npm', args, {
    cwd,
    env: { ...process.env, PORT: String(PORT), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  await untilHealthy(`http://127.0.0.1:${PORT}`, child, {
    what: `npm ${args.join(' ')}`,
    intervalMs: 10,
  })
  const ready = performance.now() - started
  const stopping = performance.now()
  child.kill('SIGTERM')
  const code = await exited
  return { ready, stop: performance.now() - stopping, code }
}

const baselineDir = mkdtempSync(join(tmpdir(), 'quanzi-bench-baseline-'))
writeFileSync(
  join(baselineDir, 'package.json'),
  JSON.stringify({ name: 'baseline', private: true, scripts: { start: 'exec node server.mjs' } }),
)
writeFileSync(
  join(baselineDir, 'server.mjs'),
  `import { createServer } from 'node:http'
const server = createServer((req, res) => res.end('{"ok":true}')).listen(${PORT})
process.on('SIGTERM', () => server.close(() => process.exit(0)))`,
)

const results: Record<string, { ready: number[]; stop: number[] }> = {
  baseline: { ready: [], stop: [] },
  cold: { ready: [], stop: [] },
  warm: { ready: [], stop: [] },
}
for (let i = 0; i < RUNS; i++) {
  const b = await once(['start'], {}, baselineDir)
  results.baseline!.ready.push(b.ready)
  results.baseline!.stop.push(b.stop)
  const dataDir = mkdtempSync(join(tmpdir(), 'quanzi-bench-start-'))
  for (const kind of ['cold', 'warm'] as const) {
    const r = await once(['start'], { QUANZI_DATA_DIR: dataDir })
    if (r.code !== 0) throw new Error(`npm start exited ${r.code} on SIGTERM`)
    results[kind]!.ready.push(r.ready)
    results[kind]!.stop.push(r.stop)
  }
  rmSync(dataDir, { recursive: true, force: true })
}
rmSync(baselineDir, { recursive: true, force: true })

const base = median(results.baseline!.ready)
console.log(
  `| start | median ms to /healthz | × baseline | runs (ms) | SIGTERM → exit, median ms |`,
)
console.log('| --- | ---: | ---: | --- | ---: |')
for (const [kind, r] of Object.entries(results)) {
  const m = median(r.ready)
  console.log(
    `| ${kind} | ${Math.round(m)} | ${(m / base).toFixed(1)} | ${r.ready.map(Math.round).join(', ')} | ${Math.round(median(r.stop))} |`,
  )
}
