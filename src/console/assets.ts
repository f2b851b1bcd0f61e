/**
 * The console's static files, served at `/console/assets/<name>.<hash>.<ext>` with a year-long
 * immutable cache: the hash changes whenever the content does. The bytes come from the module
 * `build-assets.mjs` generates, so Node and Workers serve the same files without a file system.
 */
import { EMBEDDED_ASSETS } from './assets/embedded.generated.js'

/** A served file. */
export interface ConsoleAsset {
  file: string
  contentType: string
  body: string
}

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
}

const byFile = new Map<string, ConsoleAsset>(
  EMBEDDED_ASSETS.map((a) => {
    const file = `${a.name}.${a.hash}.${a.ext}`
    return [file, { file, contentType: TYPES[a.ext] ?? 'application/octet-stream', body: a.body }]
  }),
)

/** The file for a hashed name, or undefined. */
export const findAsset = (file: string): ConsoleAsset | undefined => byFile.get(file)

/**
 * The URL of an asset by logical name and extension.
 * @example assetUrl('echarts', 'js') // '/console/assets/echarts.b66b25aeb4df.js'
 */
export function assetUrl(name: string, ext: 'js' | 'css'): string {
  const a = EMBEDDED_ASSETS.find((x) => x.name === name && x.ext === ext)
  if (!a)
    throw new Error(`no console asset ${name}.${ext}: run node src/console/assets/build-assets.mjs`)
  return `/console/assets/${a.name}.${a.hash}.${a.ext}`
}

/** The long-cache header for hashed assets. */
export const IMMUTABLE = 'public, max-age=31536000, immutable'
