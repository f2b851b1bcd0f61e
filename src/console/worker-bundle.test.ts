/**
 * The console must run on Workers: the Worker entry bundles (esbuild, Workers conditions, Node
 * built-ins left to `nodejs_compat`) with the console and its embedded assets, and nothing under
 * src/console imports a Node built-in.
 */
import * as esbuild from 'esbuild'
import { expect, it } from 'vitest'
import { assetUrl } from './assets.js'

it('bundles the Worker entry with the console and no Node built-ins under src/console', async () => {
  const root = new URL('../..', import.meta.url).pathname
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src/worker.ts'],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    // What nodejs_compat provides (pg's net/tls/crypto shims) stays outside.
    external: [
      'node:*',
      'cloudflare:*',
      'pg-native',
      'events',
      'net',
      'tls',
      'crypto',
      'stream',
    ].concat(['util', 'dns', 'fs', 'path', 'string_decoder', 'buffer', 'os']),
    metafile: true,
    logLevel: 'silent',
  })
  const inputs = Object.entries(result.metafile.inputs)
  const consoleFiles = inputs.filter(([file]) => file.startsWith('src/console/'))
  expect(consoleFiles.map(([file]) => file)).toContain('src/console/assets/embedded.generated.ts')
  expect(consoleFiles.map(([file]) => file)).toContain('src/console/pages/overview.tsx')
  const external = consoleFiles.flatMap(([file, input]) =>
    input.imports.filter((i) => i.external).map((i) => `${file} → ${i.path}`),
  )
  expect(external).toEqual([])
  const bundle = result.outputFiles[0]!.text
  expect(bundle).toContain(assetUrl('echarts', 'js').split('/').at(-1)!.split('.')[1])
})
