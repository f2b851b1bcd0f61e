/**
 * `npm start`: runs the built server (dist/node.js) in this very process — `npm start` execs it —
 * so the SIGTERM or SIGINT a supervisor sends to the `npm start` PID reaches the server itself.
 * `npm install` builds dist/ (the `prepare` script: `node src/start.mjs --build`); a start whose
 * sources are newer than the build rebuilds first (≈ 0.3 s), so edited code is what runs.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

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
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(path).mtimeMs)
    }
  }
  for (const dir of SOURCES) walk(`${root}${dir}`)
  return newest
}

async function build() {
  const esbuild = await import('esbuild')
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src/node.ts', 'src/prepare.ts'],
    outdir: 'dist',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  })
}

if (process.argv.includes('--build')) {
  await build()
  await import(`${root}dist/prepare.js`)
} else {
  if (!existsSync(entry) || statSync(entry).mtimeMs < newestSource()) await build()
  process.argv.splice(1, 1, entry)
  await import(entry)
}
