/**
 * bench/server.ts bundled as `npm start` runs the server (src/bundle-options.mjs: esbuild,
 * syntax-minified), not through tsx, whose transform adds a `__name` call per function; the
 * baseline node-webot and Express stay the packages as published, PGlite and pg-native as in the
 * build. The bundle lives under node_modules/.cache so that its external packages resolve, one per
 * run (worktrees that link one node_modules must not measure each other's code).
 */
import { rmSync } from 'node:fs'
import esbuild from 'esbuild'
// @ts-expect-error: a plain ES module of the build, without types
import { bundleOptions } from '../src/bundle-options.mjs'

/** @example const server = await bundleServer('server'); …; server.remove() */
export async function bundleServer(name: string): Promise<{ file: string; remove(): void }> {
  const file = `node_modules/.cache/quanzi-bench/${name}-${process.pid}.mjs`
  await esbuild.build({
    ...bundleOptions,
    entryPoints: ['bench/server.ts'],
    outfile: file,
    external: [...bundleOptions.external, 'wechat', 'express'],
  })
  return {
    file,
    remove() {
      rmSync(file, { force: true })
      rmSync(`${file}.map`, { force: true })
    },
  }
}
