/**
 * Operator passwords: PBKDF2-SHA256 through Web Crypto (`crypto.subtle`), which Node 20 and
 * Workers both have, stored in one self-describing format that both verify:
 * `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>`. 100 000 iterations is the most
 * Workers' PBKDF2 accepts; the count is in the hash, so it can be raised later without a migration
 * (old hashes keep verifying with their own count).
 */

/** Iterations for new hashes (the Workers maximum). */
export const PBKDF2_ITERATIONS = 100_000
const SALT_BYTES = 16
const HASH_BYTES = 32
const FORMAT = /^pbkdf2-sha256\$(\d{1,7})\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$/

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes))
const unb64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0))

async function derive(password: string, salt: Uint8Array, iterations: number, bytes: number) {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(password.normalize('NFC')),
    'PBKDF2',
    false,
    ['deriveBits'],
  )
  const bits = await crypto.subtle.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    bytes * 8,
  )
  return new Uint8Array(bits)
}

/**
 * A new hash of `password` with a random salt.
 * @example await hashPassword('correct horse') // 'pbkdf2-sha256$100000$…$…'
 */
export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS) {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES))
  const hash = await derive(password, salt, iterations, HASH_BYTES)
  return `pbkdf2-sha256$${iterations}$${b64(salt)}$${b64(hash)}`
}

/** Whether `password` matches `stored`; false for a malformed hash. Compared in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = FORMAT.exec(stored)
  if (!m) return false
  const iterations = Number(m[1])
  if (iterations < 1 || iterations > PBKDF2_ITERATIONS) return false
  const expected = unb64(m[3]!)
  if (expected.length < 16) return false
  const actual = await derive(password, unb64(m[2]!), iterations, expected.length)
  let diff = 0
  for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ actual[i]!
  return diff === 0
}

/** Why a new password is refused, or null when it is acceptable (8–200 characters). */
export function passwordProblem(password: string): string | null {
  if (password.length < 8) return 'too-short'
  if (password.length > 200) return 'too-long'
  return null
}
