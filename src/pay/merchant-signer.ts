/**
 * The merchant's SHA256withRSA signature (RSASSA-PKCS1-v1_5 over SHA-256, base64) with Web Crypto:
 * the one signing path for WeChat Pay on Node and Workers alike — the `Authorization` of every
 * APIv3 request and the `paySign` of `wx.requestPayment`. The key is the merchant API private key
 * (`apiclient_key.pem`, PKCS#8 `BEGIN PRIVATE KEY`), imported once.
 */
import { base64Encode } from '../wechat/crypto.js'
import { pemDecode } from './notification.js'

/** Signs UTF-8 text with the merchant key. */
export type MerchantSigner = (message: string) => Promise<string>

/**
 * Imports the key (lazily, on the first signature) and returns the signer.
 * @throws on the first signature when the PEM is not a PKCS#8 RSA private key
 */
export function merchantSigner(privateKeyPem: string): MerchantSigner {
  let key: Promise<CryptoKey> | undefined
  const load = () => {
    const { label, der } = pemDecode(privateKeyPem)
    if (label !== 'PRIVATE KEY')
      throw new Error(
        `PAY_PRIVATE_KEY: expected a PKCS#8 "BEGIN PRIVATE KEY" PEM (apiclient_key.pem), got "${label}"`,
      )
    return crypto.subtle.importKey(
      'pkcs8',
      der,
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      false,
      ['sign'],
    )
  }
  return async (message) => {
    key ??= Promise.resolve().then(load)
    const signature = await crypto.subtle.sign(
      'RSASSA-PKCS1-v1_5',
      await key,
      new TextEncoder().encode(message),
    )
    return base64Encode(new Uint8Array(signature))
  }
}
