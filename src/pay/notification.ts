/**
 * WeChat Pay APIv3 notifications (../shared/protocol/wechatpay-v3.md §3): our own verification and
 * decryption, Web Crypto only (portable). wechatpay-node-v3 is not used here: it does not check the
 * AES-GCM tag, knows only platform certificates (not `PUB_KEY_ID_…` public keys) and does not check
 * freshness.
 *
 *   1. the key is chosen by `Wechatpay-Serial`: a platform-certificate serial (hex, either case)
 *      or a public-key ID (exact), each configured with a PEM (`PUBLIC KEY`, or a `CERTIFICATE`
 *      whose key is extracted);
 *   2. `Wechatpay-Signature` (SHA256withRSA, base64) must verify over
 *      `timestamp\nnonce\nrawBody\n`; probes signed `WECHATPAY/SIGNTEST/…` never do;
 *   3. the timestamp must be within 5 minutes of now;
 *   4. `resource` is decrypted with AEAD_AES_256_GCM (APIv3 key, 12-byte nonce, associated data,
 *      the 16-byte tag at the end of the ciphertext) — a flipped byte anywhere fails.
 */
import * as v from 'valibot'
import { base64Decode } from '../wechat/crypto.js'
import { type NotificationResource, readResource, text } from './notification-resource.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Why a notification was refused (each maps to a 4xx answer). */
export type PayNotificationReason =
  | 'missing_header'
  | 'unknown_serial'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'bad_body'
  | 'bad_resource'
  | 'decrypt_failed'

export class PayNotificationError extends Error {
  override readonly name = 'PayNotificationError'
  constructor(
    readonly reason: PayNotificationReason,
    message: string,
  ) {
    super(message)
  }
}

/** The verified, decrypted notification, its resource checked for its subject (`kind`). */
export type PayNotification = {
  id: string
  eventType: string
  createTime: string
  /** `resource.original_type`: `transaction`, `refund` or `mch_payment` (transfers). */
  originalType: string
  /** The serial (or public-key ID) that verified it. */
  serial: string
} & NotificationResource

/** The headers of a notification, lower-cased names as Hono gives them. */
export interface PayNotificationHeaders {
  timestamp?: string
  nonce?: string
  signature?: string
  serial?: string
}

/** Verification keys by `Wechatpay-Serial`. */
export type PayVerifyKeys = Map<string, CryptoKey>

const MAX_SKEW_SECONDS = 300

/** Imports configured PEMs (`PUBLIC KEY` or `CERTIFICATE`), keyed by serial / public-key ID. */
export async function importVerifyKeys(pems: Record<string, string>): Promise<PayVerifyKeys> {
  const keys: PayVerifyKeys = new Map()
  for (const [serial, pem] of Object.entries(pems)) keys.set(serial, await importRsaPublicKey(pem))
  return keys
}

/** A PEM public key or certificate → a Web Crypto RSASSA-PKCS1-v1_5/SHA-256 verification key. */
export async function importRsaPublicKey(pem: string): Promise<CryptoKey> {
  const { label, der } = pemDecode(pem)
  const spki =
    label === 'PUBLIC KEY' ? der : label === 'CERTIFICATE' ? certificateSpki(der) : undefined
  if (!spki) throw new RangeError(`expected a PUBLIC KEY or CERTIFICATE PEM, got ${label}`)
  return crypto.subtle.importKey(
    'spki',
    spki,
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['verify'],
  )
}

/** Decodes one PEM block. */
export function pemDecode(pem: string): { label: string; der: Uint8Array<ArrayBuffer> } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]+?)-----END \1-----/.exec(pem)
  if (!m) throw new RangeError('not a PEM block')
  return { label: m[1]!, der: base64Decode(m[2]!.replace(/\s+/g, '')) }
}

/** One DER element: its tag, and where its content starts and ends. */
function derElement(der: Uint8Array, at: number) {
  const tag = der[at]!
  let length = der[at + 1]!
  let start = at + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    if (bytes < 1 || bytes > 4) throw new RangeError('DER length out of range')
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!
    start += bytes
  }
  const end = start + length
  if (end > der.length) throw new RangeError('DER element runs past the end')
  return { tag, start, end }
}

/**
 * The SubjectPublicKeyInfo of an X.509 certificate: Certificate → TBSCertificate → the field after
 * [0] version, serial, signature algorithm, issuer, validity and subject.
 */
export function certificateSpki(der: Uint8Array): Uint8Array<ArrayBuffer> {
  const cert = derElement(der, 0)
  const tbs = derElement(der, cert.start)
  let at = tbs.start
  let field = derElement(der, at)
  if (field.tag === 0xa0) {
    at = field.end // explicit version
    field = derElement(der, at)
  }
  for (let skip = 0; skip < 5; skip++) at = derElement(der, at).end // serial … subject
  const spki = derElement(der, at)
  if (spki.tag !== 0x30) throw new RangeError('no SubjectPublicKeyInfo in the certificate')
  return der.slice(at, spki.end)
}

/** Decrypts an APIv3 AEAD_AES_256_GCM resource; the tag is checked (a wrong byte throws). */
export async function decryptResource(
  apiV3Key: string,
  r: { ciphertext: string; nonce: string; associated_data?: string },
): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(apiV3Key), 'AES-GCM', false, [
    'decrypt',
  ])
  let data: Uint8Array<ArrayBuffer>
  try {
    data = base64Decode(r.ciphertext)
  } catch {
    throw new PayNotificationError('bad_resource', 'resource.ciphertext is not base64')
  }
  try {
    const plain = await crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: encoder.encode(r.nonce),
        additionalData: encoder.encode(r.associated_data ?? ''),
        tagLength: 128,
      },
      key,
      data,
    )
    return decoder.decode(plain)
  } catch {
    throw new PayNotificationError('decrypt_failed', 'resource does not decrypt (tag mismatch)')
  }
}

/** A platform-certificate serial: hex digits, either case (a `PUB_KEY_ID_…` is not one). */
const HEX_SERIAL = /^[0-9A-Fa-f]+$/

/**
 * The key configured for a `Wechatpay-Serial`: a public-key ID (`PUB_KEY_ID_…`) exactly as
 * configured; a platform-certificate serial — a hex number — in either case, upper or lower, on
 * either side.
 */
function verifyKeyFor(keys: PayVerifyKeys, serial: string): CryptoKey | undefined {
  const exact = keys.get(serial)
  if (exact || !HEX_SERIAL.test(serial)) return exact
  const wanted = serial.toUpperCase()
  for (const [configured, key] of keys)
    if (HEX_SERIAL.test(configured) && configured.toUpperCase() === wanted) return key
  return undefined
}

/**
 * Verifies a body signed by WeChat Pay (notifications and API responses): the key named by the
 * serial, a fresh timestamp, SHA256withRSA over `timestamp\nnonce\nbody\n`. Returns the serial.
 */
export async function verifyWechatpaySignature(
  rawBody: string,
  headers: PayNotificationHeaders,
  o: { keys: PayVerifyKeys; now: Date },
): Promise<string> {
  const { timestamp, nonce, signature, serial } = headers
  if (!timestamp || !nonce || !signature || !serial)
    throw new PayNotificationError('missing_header', 'Wechatpay-* headers missing')
  const key = verifyKeyFor(o.keys, serial)
  if (!key) throw new PayNotificationError('unknown_serial', 'Wechatpay-Serial is not configured')
  if (
    !/^\d{1,12}$/.test(timestamp) ||
    Math.abs(o.now.getTime() / 1000 - Number(timestamp)) >= MAX_SKEW_SECONDS
  ) {
    throw new PayNotificationError('stale_timestamp', 'Wechatpay-Timestamp is not within 5 minutes')
  }
  let sig: Uint8Array<ArrayBuffer>
  try {
    if (signature.startsWith('WECHATPAY/SIGNTEST/')) throw new Error('probe')
    sig = base64Decode(signature)
  } catch {
    throw new PayNotificationError('bad_signature', 'Wechatpay-Signature does not verify')
  }
  const message = encoder.encode(`${timestamp}\n${nonce}\n${rawBody}\n`)
  const ok = await crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, sig, message)
  if (!ok) throw new PayNotificationError('bad_signature', 'Wechatpay-Signature does not verify')
  return serial
}

/** The envelope (§3.1) as far as it is read, checked before anything is decrypted. */
const envelopeSchema = v.object({
  id: v.pipe(text(128), v.minLength(1, 'is required')),
  event_type: text(64),
  create_time: v.optional(text(64)),
  resource: v.object({
    original_type: v.optional(text(64)),
    algorithm: v.literal('AEAD_AES_256_GCM'),
    ciphertext: v.string(),
    nonce: v.string(),
    associated_data: v.optional(v.string()),
  }),
})

/**
 * Verifies and decrypts a notification, and checks its resource for its subject. Throws
 * {@link PayNotificationError} for anything that is not a fresh, signed notification of the
 * documented shape.
 */
export async function openNotification(
  rawBody: string,
  headers: PayNotificationHeaders,
  o: { keys: PayVerifyKeys; apiV3Key: string; now: Date },
): Promise<PayNotification> {
  const serial = await verifyWechatpaySignature(rawBody, headers, o)
  let body: unknown
  try {
    body = JSON.parse(rawBody)
  } catch {
    throw new PayNotificationError('bad_body', 'body is not JSON')
  }
  const envelope = v.safeParse(envelopeSchema, body, { abortPipeEarly: true })
  if (!envelope.success) {
    const problems = envelope.issues.map((i) => `${v.getDotPath(i) ?? 'body'}: ${i.message}`)
    throw new PayNotificationError(
      'bad_body',
      `not an AEAD_AES_256_GCM notification: ${problems.join('; ')}`,
    )
  }
  const { id, event_type, create_time, resource: r } = envelope.output
  const plain = await decryptResource(o.apiV3Key, r)
  let resource: unknown
  try {
    resource = JSON.parse(plain)
  } catch {
    throw new PayNotificationError('bad_resource', 'decrypted resource is not JSON')
  }
  const originalType = r.original_type ?? ''
  const subject = readResource(event_type, originalType, resource)
  if ('problems' in subject) throw new PayNotificationError('bad_resource', subject.problems)
  return {
    id,
    eventType: event_type,
    createTime: create_time ?? '',
    originalType,
    serial,
    ...subject,
  }
}
