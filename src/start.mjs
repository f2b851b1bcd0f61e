/**
 * `npm start`: runs the built server (dist/node.js) in this very process — `npm start` execs it —
 * so the SIGTERM or SIGINT a supervisor sends to the `npm start` PID reaches the server itself.
 * `npm install` builds dist/ (the `prepare` script: `node src/start.mjs --build`); a start whose
 * sources are newer than the build rebuilds first (≈ 1 s, in a child process so that the bundler
 * stays out of the server's memory), so edited code is what runs. The `npm start` script gives node
 * its memory settings (young generation, old-generation growth, malloc arenas: README → Operations →
 * Memory).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleOptions } from './bundle-options.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const entry = `${root}dist/node.js`
const SOURCES = ['src', 'handlers', 'jobs', 'migrations']

/** The newest modification time among the sources (and package.json). */
function newestSource() {
  let newest = statSync(`${root}package.json`).mtimeMs
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${e.name}`
      if (e.isDirectory()) walk(path)
      else if (/\.(ts|tsx|mjs)$/.test(e.name) && !e.name.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(path).mtimeMs)
      else if (dir.endsWith('console/assets') && /\.(js|css)$/.test(e.name))
        newest = Math.max(newest, statSync(path).mtimeMs)
    }
  }
  for (const dir of SOURCES) walk(`${root}${dir}`)
  return newest
}

function compilePgliteWasm() {
  const index = createRequire(import.meta.url).resolve('@electric-sql/pglite')
  return readFile(join(dirname(index), 'pglite.wasm')).then((bytes) => WebAssembly.compile(bytes))
}

async function build() {
  // The console's hashed assets (ECharts, console.js/css) as a module both entries bundle.
  const { writeEmbeddedAssets } = await import('./console/assets/build-assets.mjs')
  writeEmbeddedAssets()
  const esbuild = await import('esbuild')
  await esbuild.build({
    ...bundleOptions,
    absWorkingDir: root,
    entryPoints: ['src/node.ts', 'src/prepare.ts'],
    outdir: 'dist',
  })
}

if (process.argv.includes('--build')) {
  await build()
  await import(`${root}dist/prepare.js`)
} else if (process.argv.includes('--bundle')) {
  await build()
} else {
  // In a process of its own: the bundler and the console's assets (ECharts) stay out of the
  // server's memory — built in-process, an idle server held 103 MB RSS instead of 89 MB, and an
  // esbuild service process stayed beside it (bench/README.md → Memory).
  if (!existsSync(entry) || statSync(entry).mtimeMs < newestSource())
    execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--bundle'], {
      stdio: 'inherit',
    })
  // A template migrated before the migrations changed (a pull, a merge) would refuse them: drop
  // it, and the server migrates a fresh database instead (src/node.ts without a template).
  const template = `${root}dist/pglite-template`
  const migrations = readdirSync(`${root}migrations`).map(
    (f) => statSync(`${root}migrations/${f}`).mtimeMs,
  )
  if (existsSync(template) && statSync(template).mtimeMs < Math.max(...migrations))
    rmSync(template, { recursive: true, force: true })
  // On the embedded database, PGlite's WebAssembly compiles on V8's background threads while the
  // server's bundle loads (src/db/open-database.ts takes it from here).
  if (!process.env.DATABASE_URL) globalThis.quanziPgliteWasm = compilePgliteWasm()
  process.argv.splice(1, 1, entry)
  await import(entry)
}
