/**
 * The console's static files, served at `/console/assets/<name>.<hash>.<ext>` with a year-long
 * immutable cache: the hash changes whenever the content does. The bytes come from the module
 * `build-assets.mjs` generates, so Node and Workers serve the same files without a file system —
 * compressed there once (brotli, gzip) for the clients that accept it: ECharts is some 180 KB
 * over the wire in brotli instead of 630 KB.
 */
import { parseAccept } from 'hono/utils/accept'
import { EMBEDDED_ASSETS } from './assets/embedded.generated.js'

/** A content coding an asset is kept in besides its text. */
export type AssetCoding = 'br' | 'gzip'

/** A served file. */
export interface ConsoleAsset {
  file: string
  contentType: string
  body: string
  /** The same file in a content coding (decoded from the module once, on first use). */
  encoded(coding: AssetCoding): Uint8Array<ArrayBuffer>
}

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
}

/** Base64 → bytes (atob: Node and Workers alike). */
const fromBase64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))

const byFile = new Map<string, ConsoleAsset>(
  EMBEDDED_ASSETS.map((a) => {
    const file = `${a.name}.${a.hash}.${a.ext}`
    const decoded = new Map<AssetCoding, Uint8Array<ArrayBuffer>>()
    const encoded = (coding: AssetCoding) => {
      const known = decoded.get(coding)
      if (known) return known
      const bytes = fromBase64(a[coding])
      decoded.set(coding, bytes)
      return bytes
    }
    const contentType = TYPES[a.ext] ?? 'application/octet-stream'
    return [file, { file, contentType, body: a.body, encoded }]
  }),
)

/**
 * The coding to send an asset in for an `Accept-Encoding` header: brotli, else gzip, whichever
 * the client weighs higher (brotli on a tie); none when it accepts neither (q=0 refuses one, `*`
 * stands for any not named).
 * @example preferredCoding('gzip, deflate, br') // 'br'
 */
export function preferredCoding(acceptEncoding: string | undefined): AssetCoding | undefined {
  if (!acceptEncoding) return undefined
  const accepts = parseAccept(acceptEncoding)
  const any = accepts.find((a) => a.type === '*')?.q ?? 0
  const weight = (coding: AssetCoding) =>
    accepts.find((a) => a.type.toLowerCase() === coding)?.q ?? any
  const br = weight('br')
  const gzip = weight('gzip')
  if (br > 0 && br >= gzip) return 'br'
  return gzip > 0 ? 'gzip' : undefined
}

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
