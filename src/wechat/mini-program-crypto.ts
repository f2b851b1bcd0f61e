/**
 * Mini-program user-data crypto: `encryptedData` is AES-128-CBC with key = Base64(session_key),
 * IV = Base64(iv) and ordinary 16-byte PKCS#7; `signature = sha1(rawData + session_key)`.
 */
import { base64Decode, sha1Hex, timingSafeEqual, WechatCryptoError } from './crypto.js'

/** Decrypts `encryptedData` from `wx.getUserProfile` & co. and checks its watermark appid. */
export async function decryptMiniProgramData(
  sessionKey: string,
  iv: string,
  encryptedData: string,
  appid: string,
): Promise<Record<string, unknown>> {
  const key = await crypto.subtle.importKey('raw', base64Decode(sessionKey), 'AES-CBC', false, [
    'decrypt',
  ])
  let plain: ArrayBuffer
  try {
    plain = await crypto.subtle.decrypt(
      { name: 'AES-CBC', iv: base64Decode(iv) },
      key,
      base64Decode(encryptedData),
    )
  } catch {
    throw new WechatCryptoError('invalid_padding', 'encryptedData does not decrypt with this key')
  }
  const data = JSON.parse(new TextDecoder().decode(plain)) as Record<string, unknown>
  const watermark = data.watermark as { appid?: string } | undefined
  if (watermark?.appid !== appid) {
    throw new WechatCryptoError('receive_id_mismatch', 'watermark appid does not match')
  }
  return data
}

/** Checks `signature == sha1(rawData + session_key)` in constant time. */
export async function checkMiniProgramSignature(
  rawData: string,
  sessionKey: string,
  signature: string,
): Promise<boolean> {
  return timingSafeEqual(await sha1Hex(rawData + sessionKey), signature)
}
