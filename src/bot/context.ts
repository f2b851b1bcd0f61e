/**
 * What a handler receives: the typed message, the account, the matched text, copy and outbound
 * access. The router knows nothing else; the app adds its own fields (the member, the database,
 * community settings) by augmenting {@link BotContext}, as Hono's `ContextVariableMap` is
 * augmented — quanzi's are declared in `src/inbound/community-context.ts`.
 */
import type { Clock } from '../clock.js'
import type { Logger } from '../logger.js'
import type { ApiClient } from '../wechat/api/client.js'
import type { InboundMessage } from '../wechat/message.js'
import type { Locale, Translate } from './i18n.js'

/**
 * The per-push context handed to every handler.
 * @example
 * declare module '../bot/context.js' {
 *   interface BotContext extends MyAppContext {}
 * }
 */
export interface BotContext {
  account: { appid: string; locale: Locale }
  message: InboundMessage
  /** The text the router matched on: a text message's content (trimmed), a voice recognition, or a
   * CLICK event key; empty otherwise. */
  text: string
  /** For commands: the text after the command word, trimmed. */
  args: string
  /** For `hears` routes: the regular-expression match. */
  match: RegExpExecArray | null
  /** Outbound calls (QR codes …) of the push's account. */
  wechat: WechatAccess
  clock: Clock
  logger: Logger
  t: Translate
}

/** Outbound WeChat access for handlers. */
export interface WechatAccess {
  /** The API client of an account, if it has a secret. */
  api(appid: string): ApiClient | undefined
  /** Where `showqrcode` images are served. */
  qrImageBase: string
  /** WeCom customer contact, when configured: its API and the groups join QRs lead into. */
  wecom?: { api: ApiClient; joinChats: string[] }
}
