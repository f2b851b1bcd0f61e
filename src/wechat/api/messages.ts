/**
 * Sending messages: template messages (validated against the 2023-05-04 content rules before they
 * leave), customer-service messages and subscribe messages (bizsend).
 */
import { isHttpUrl } from '../../http-url.js'
import type { Reply } from '../reply.js'
import type { ApiClient } from './client.js'
import { WechatValidationError } from './errors.js'

/** A mini-program page to open; the program must be linked to the account. */
export interface MiniProgramLink {
  appid: string
  pagepath: string
}

/** A template message, as `/cgi-bin/message/template/send` takes it. */
export interface TemplateMessage {
  touser: string
  template_id: string
  url?: string
  miniprogram?: MiniProgramLink
  /** Same touser + client_msg_id is sent once by WeChat (~10 min); the outbox derives it. */
  client_msg_id?: string
  data: Record<string, { value: string }>
}

/**
 * What a template value may not hold as emoji: pictographs, and the parts emoji are made of that
 * are not pictographs themselves — flags' regional indicators, the zero-width joiner, the emoji
 * variation selector, the keycap mark (🇨🇳, 1️⃣ and 👨‍👩‍👧 pass a pictograph test alone, or leave
 * invisible characters behind when their pictographs are taken out).
 */
export const TEMPLATE_EMOJI =
  /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u200d|\ufe0f|\u20e3/u
/** The line breaks a value may not hold: LF, CR, NEL, the line and paragraph separators. */
const LINE_BREAK = /[\r\n\u0085\u2028\u2029]/
const KEYWORD_MAX = 20

/**
 * Checks a template message against the rules in force since 2023-05-04: no `first`/`remark`, no
 * colours, no emoji, no line breaks (LF, CR, NEL, U+2028, U+2029), each value ≤ 20 characters
 * (WeChat truncates longer ones).
 * Throws {@link WechatValidationError} naming the field.
 */
export function validateTemplateMessage(m: TemplateMessage): void {
  if (!m.touser) throw new WechatValidationError('touser', 'required', { code: 'required' })
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(m.template_id ?? '')) {
    throw new WechatValidationError('template_id', 'required: letters, digits, _ and -', {
      code: 'template_id',
    })
  }
  for (const legacy of ['color', 'topcolor']) {
    if (legacy in m)
      throw new WechatValidationError(legacy, 'colours are ignored since 2023-05-04; remove it', {
        code: 'colour',
      })
  }
  if (m.url !== undefined && !isHttpUrl(m.url)) {
    throw new WechatValidationError(
      'url',
      'must be an absolute http(s) URL, as a URL parser writes it',
      { code: 'url' },
    )
  }
  if (m.miniprogram) validateMiniProgramLink(m.miniprogram, 'miniprogram')
  if (
    m.client_msg_id !== undefined &&
    (m.client_msg_id.length === 0 || m.client_msg_id.length > 64)
  ) {
    throw new WechatValidationError('client_msg_id', 'must be 1–64 characters', {
      code: 'client_msg_id',
    })
  }
  const entries = Object.entries(m.data ?? {})
  if (entries.length === 0)
    throw new WechatValidationError('data', 'at least one keyword is required', {
      code: 'no_keywords',
    })
  for (const [key, field] of entries) {
    const path = `data.${key}`
    if (key === 'first' || key === 'remark') {
      throw new WechatValidationError(
        path,
        'first/remark are not shown since 2023-05-04; remove it',
        { code: 'first_remark' },
      )
    }
    if (typeof field !== 'object' || field === null || typeof field.value !== 'string') {
      throw new WechatValidationError(`${path}.value`, 'must be a string', { code: 'not_string' })
    }
    if ('color' in field)
      throw new WechatValidationError(
        `${path}.color`,
        'colours are ignored since 2023-05-04; remove it',
        { code: 'colour' },
      )
    const value = field.value
    if (LINE_BREAK.test(value))
      throw new WechatValidationError(
        `${path}.value`,
        'no line breaks (\\n, \\r, U+0085, U+2028, U+2029): one truncates the value',
        { code: 'line_break' },
      )
    if (TEMPLATE_EMOJI.test(value))
      throw new WechatValidationError(`${path}.value`, 'emoji are not allowed', { code: 'emoji' })
    const length = [...value].length
    if (length > KEYWORD_MAX) {
      throw new WechatValidationError(
        `${path}.value`,
        `${length} characters; the limit is ${KEYWORD_MAX} (WeChat truncates)`,
        { code: 'too_long', params: { length, max: KEYWORD_MAX } },
      )
    }
  }
}

function validateMiniProgramLink(link: MiniProgramLink, field: string): void {
  if (!/^wx[0-9a-zA-Z]{16}$/.test(link.appid ?? ''))
    throw new WechatValidationError(`${field}.appid`, 'must be a mini-program AppID', {
      code: 'mp_appid',
    })
  if (!link.pagepath)
    throw new WechatValidationError(`${field}.pagepath`, 'required', { code: 'required' })
}

/** Sends a validated template message; returns WeChat's msgid (matched later by TEMPLATESENDJOBFINISH). */
export async function sendTemplateMessage(api: ApiClient, m: TemplateMessage): Promise<string> {
  validateTemplateMessage(m)
  const res = await api.call({
    method: 'template.send',
    path: '/cgi-bin/message/template/send',
    http: 'POST',
    body: m,
    auth: true,
  })
  return String(res.msgid)
}

/** Customer-service message bodies (without `touser`). */
export type CustomMessage =
  | { msgtype: 'text'; text: { content: string } }
  | { msgtype: 'image'; image: { media_id: string } }
  | {
      msgtype: 'news'
      news: { articles: [{ title: string; description?: string; url: string; picurl?: string }] }
    }
  | {
      msgtype: 'miniprogrampage'
      miniprogrampage: { title: string; appid: string; pagepath: string; thumb_media_id: string }
    }

/** How long a member's message keeps the customer-service window open. */
export const CUSTOM_WINDOW_MS = 48 * 3600 * 1000

/** Sends a customer-service message (45015 outside the window, 45047 over its quota). */
export async function sendCustomMessage(
  api: ApiClient,
  touser: string,
  m: CustomMessage,
): Promise<void> {
  if (!touser) throw new WechatValidationError('touser', 'required')
  if (m.msgtype === 'text' && !m.text.content)
    throw new WechatValidationError('text.content', 'required')
  if (m.msgtype === 'miniprogrampage') validateMiniProgramLink(m.miniprogrampage, 'miniprogrampage')
  await api.call({
    method: 'custom.send',
    path: '/cgi-bin/message/custom/send',
    http: 'POST',
    body: { touser, ...m },
    auth: true,
    idempotent: false,
  })
}

/** A subscribe message (订阅通知) for `/cgi-bin/message/subscribe/bizsend`. */
export interface SubscribeMessage {
  touser: string
  template_id: string
  page?: string
  miniprogram?: MiniProgramLink
  data: Record<string, { value: string }>
}

const SUBSCRIBE_LIMITS: [RegExp, (v: string) => string | undefined][] = [
  [
    /^thing\d*$/,
    (v) => ([...v].length > 20 ? 'thing values are at most 20 characters' : undefined),
  ],
  [
    /^number\d*$/,
    (v) => (!/^-?\d{1,32}(\.\d+)?$/.test(v) ? 'number values are up to 32 digits' : undefined),
  ],
  [
    /^symbol\d*$/,
    (v) => ([...v].length > 5 ? 'symbol values are at most 5 characters' : undefined),
  ],
]

/** Checks the documented value-type limits (thing ≤ 20, number ≤ 32 digits, symbol ≤ 5). */
export function validateSubscribeMessage(m: SubscribeMessage): void {
  if (!m.touser) throw new WechatValidationError('touser', 'required')
  if (!m.template_id) throw new WechatValidationError('template_id', 'required')
  if (m.miniprogram) validateMiniProgramLink(m.miniprogram, 'miniprogram')
  for (const [key, field] of Object.entries(m.data ?? {})) {
    if (typeof field?.value !== 'string')
      throw new WechatValidationError(`data.${key}.value`, 'must be a string')
    for (const [pattern, check] of SUBSCRIBE_LIMITS) {
      const problem = pattern.test(key) ? check(field.value) : undefined
      if (problem) throw new WechatValidationError(`data.${key}.value`, problem)
    }
  }
}

/** Sends a subscribe message; 43101 when the member refused or used up the subscription. */
export async function sendSubscribeMessage(api: ApiClient, m: SubscribeMessage): Promise<void> {
  validateSubscribeMessage(m)
  await api.call({
    method: 'subscribe.send',
    path: '/cgi-bin/message/subscribe/bizsend',
    http: 'POST',
    body: m,
    auth: true,
    idempotent: false,
  })
}

/**
 * The customer-service message that carries a passive reply which missed the deadline; null for
 * replies that have no such form (transfer to customer service).
 */
export function replyToCustomMessage(reply: Reply): CustomMessage | null {
  switch (reply.type) {
    case 'text':
      return { msgtype: 'text', text: { content: reply.content } }
    case 'image':
      return { msgtype: 'image', image: { media_id: reply.mediaId } }
    case 'news': {
      const a = reply.articles[0]!
      return {
        msgtype: 'news',
        news: {
          articles: [
            { title: a.title, description: a.description, url: a.url ?? '', picurl: a.picUrl },
          ],
        },
      }
    }
    case 'transfer_customer_service':
      return null
  }
}
