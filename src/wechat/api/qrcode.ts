/** Parametric QR codes (§7): temporary or permanent, integer or string scene, limits enforced. */
import type { ApiClient } from './client.js'
import { WechatValidationError } from './errors.js'

/** 30 days, the longest a temporary code lives. */
export const QR_MAX_EXPIRE_SECONDS = 2_592_000

/** What to create. */
export type QrCodeRequest =
  | { kind: 'temporary'; scene: number | string; expireSeconds: number }
  | { kind: 'permanent'; scene: number | string }

/** A created code; `imageUrl` shows it (no auth needed). */
export interface QrCode {
  ticket: string
  url: string
  expireSeconds: number | null
  imageUrl: string
}

/** Builds the request body, enforcing WeChat's limits. */
export function qrCodeBody(r: QrCodeRequest): Record<string, unknown> {
  const numeric = typeof r.scene === 'number'
  if (numeric) {
    const n = r.scene as number
    const max = r.kind === 'permanent' ? 100_000 : 4_294_967_295
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new WechatValidationError(
        'action_info.scene.scene_id',
        `must be an integer from 1 to ${max}`,
      )
    }
  } else if ((r.scene as string).length < 1 || (r.scene as string).length > 64) {
    throw new WechatValidationError('action_info.scene.scene_str', 'must be 1–64 characters')
  }
  const action = `QR_${r.kind === 'permanent' ? 'LIMIT_' : ''}${numeric ? '' : 'STR_'}SCENE`
  const scene = numeric ? { scene_id: r.scene } : { scene_str: r.scene }
  if (r.kind === 'permanent') return { action_name: action, action_info: { scene } }
  if (
    !Number.isInteger(r.expireSeconds) ||
    r.expireSeconds < 60 ||
    r.expireSeconds > QR_MAX_EXPIRE_SECONDS
  ) {
    throw new WechatValidationError('expire_seconds', `must be 60 to ${QR_MAX_EXPIRE_SECONDS}`)
  }
  return { expire_seconds: r.expireSeconds, action_name: action, action_info: { scene } }
}

/** Where QR images are shown (`showqrcode`); the sandbox serves its own. */
export const QR_IMAGE_BASE = 'https://mp.weixin.qq.com'

/**
 * The image URL of a ticket. Build it when showing the code rather than storing it: the ticket is
 * what WeChat issued, the base is configuration and may change.
 * @example qrImageUrl('https://mp.weixin.qq.com', ticket)
 */
export function qrImageUrl(imageBase: string, ticket: string): string {
  return `${imageBase}/cgi-bin/showqrcode?ticket=${encodeURIComponent(ticket)}`
}

/** Creates a parametric QR code; `imageBase` is where `showqrcode` is served. */
export async function createQrCode(
  api: ApiClient,
  r: QrCodeRequest,
  imageBase = QR_IMAGE_BASE,
): Promise<QrCode> {
  const res = await api.call({
    method: 'qrcode.create',
    path: '/cgi-bin/qrcode/create',
    http: 'POST',
    body: qrCodeBody(r),
    auth: true,
  })
  const ticket = String(res.ticket)
  return {
    ticket,
    url: String(res.url),
    expireSeconds: res.expire_seconds === undefined ? null : Number(res.expire_seconds),
    imageUrl: qrImageUrl(imageBase, ticket),
  }
}
