/**
 * Opening a downloaded bill (Node): GZIP is undone first, then the SHA-1 of the original bytes —
 * BOM included, before any decoding — is compared with the `hash_value` the signed answer gave,
 * case-insensitively ("原始账单(gzip需要解压缩)的摘要值"). A mismatch means the bytes are not the
 * bill WeChat Pay described: they are discarded, and a new download URL must be asked for.
 */
import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'

/** The downloaded bytes are not the bill the signed answer described (or cannot be opened). */
export class BillIntegrityError extends Error {
  override readonly name = 'BillIntegrityError'
}

/** True when the bytes start with the GZIP magic number (a bill's text never does). */
export const isGzip = (bytes: Uint8Array) => bytes[0] === 0x1f && bytes[1] === 0x8b

/**
 * The bill's original bytes, decompressed when they are GZIP, after checking their digest.
 * @throws BillIntegrityError on an unknown hash type, a broken GZIP stream or a digest mismatch
 */
export function openBill(
  bytes: Uint8Array,
  expected: { hashType: string; hashValue: string },
): Uint8Array {
  if (expected.hashType.toUpperCase() !== 'SHA1')
    throw new BillIntegrityError(`unsupported hash_type ${expected.hashType}`)
  let original: Uint8Array
  try {
    original = isGzip(bytes) ? gunzipSync(bytes) : bytes
  } catch (error) {
    throw new BillIntegrityError(`the GZIP bill does not decompress: ${String(error)}`)
  }
  const digest = createHash('sha1').update(original).digest('hex')
  if (digest !== expected.hashValue.trim().toLowerCase())
    throw new BillIntegrityError(
      `the bill's SHA-1 ${digest} is not the hash_value ${expected.hashValue}: discarded`,
    )
  return original
}
