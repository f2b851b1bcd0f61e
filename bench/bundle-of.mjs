/**
 * Builds bench/server.ts as it was at a commit, for an A/B of two versions of the code within one
 * bench run: `node bench/bundle-of.mjs <commit>` prints the bundle's path, and
 * `BENCH_VARIANT="BENCH_BUNDLE=<that path>" npm run bench` runs every target again right after
 * itself on that build (rounds interleaved as usual). The commit is checked out in a temporary
 * worktree that shares this checkout's node_modules (so the packages are the same), bundled as the
 * bench bundles its own server (src/bundle-options.mjs), and removed; the bundle lives under
 * node_modules/.cache/quanzi-bench, where its external packages resolve.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import esbuild from 'esbuild'

const commit = process.argv[2]
if (!commit) {
  console.error('usage: node bench/bundle-of.mjs <commit>')
  process.exit(2)
}
const sha = execFileSync('git', ['rev-parse', '--short', commit], { encoding: 'utf8' }).trim()
const root = resolve('.')
const dir = mkdtempSync(join(tmpdir(), `quanzi-${sha}-`))
const outfile = join(root, 'node_modules/.cache/quanzi-bench', `server-at-${sha}.mjs`)
try {
  execFileSync('git', ['worktree', 'add', '--detach', '--force', dir, sha], { stdio: 'ignore' })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  // The console's assets are generated at install; the commit's own build writes them (`--bundle`:
  // not `--build`, which also prepares the PGlite template the bench does not use).
  execFileSync(process.execPath, ['src/start.mjs', '--bundle'], { cwd: dir, stdio: 'ignore' })
  const { bundleOptions } = await import(join(dir, 'src/bundle-options.mjs'))
  await esbuild.build({
    ...bundleOptions,
    absWorkingDir: dir,
    entryPoints: ['bench/server.ts'],
    outfile,
    external: [...bundleOptions.external, 'wechat', 'express'],
  })
} finally {
  // (a failed `worktree add` left nothing to remove: its own error is the one to see)
  try {
    execFileSync('git', ['worktree', 'remove', '--force', dir], { stdio: 'ignore' })
  } catch {}
  rmSync(dir, { recursive: true, force: true })
}
console.log(outfile)
