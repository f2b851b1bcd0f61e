/**
 * An in-process bench runs as the server runs: bundled (src/bundle-options.mjs), not through tsx,
 * whose transform adds a call per function the server does not pay.
 */
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * Unless this process is already the bundle, bundles the bench at `entry` (its `import.meta.url`),
 * runs it in a child with `BENCH_BUNDLED=1` and exits with its status; in the bundle, returns.
 * @example await runBundled(import.meta.url, 'layers')
 */
export async function runBundled(entry: string, name: string): Promise<void> {
  if (process.env.BENCH_BUNDLED === '1') return
  const esbuild = await import('esbuild')
  // @ts-expect-error: a plain ES module of the build, without types
  const { bundleOptions } = await import('../src/bundle-options.mjs')
  const outfile = `node_modules/.cache/quanzi-bench/${name}-${process.pid}.mjs`
  await esbuild.build({
    ...bundleOptions,
    entryPoints: [fileURLToPath(entry)],
    outfile,
    external: [...bundleOptions.external, 'esbuild'],
  })
  const run = spawnSync(process.execPath, [outfile], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_BUNDLED: '1' },
  })
  rmSync(outfile, { force: true })
  rmSync(`${outfile}.map`, { force: true })
  process.exit(run.status ?? 1)
}
