/** What a handler receives: the typed message, the member, the account, copy and services. */
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { CheckinSettings } from '../community/checkins.js'
import type { InviteSettings } from '../community/invites.js'
import type { RecordedMember } from '../community/members.js'
import type { ChannelIdentity, GroupRobots } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { ApiClient } from '../wechat/api/client.js'
import type { InboundMessage } from '../wechat/message.js'
import type { Locale, Translate } from './i18n.js'

/** The per-push context handed to every handler. */
export interface BotContext {
  account: { appid: string; locale: Locale }
  message: InboundMessage
  /** The sender as recorded for this push (`isNew`: this push created them). */
  member: RecordedMember
  /** The text the router matched on: a text message's content (trimmed), a voice recognition, or a
   * CLICK event key; empty otherwise. */
  text: string
  /** For commands: the text after the command word, trimmed. */
  args: string
  /** For `hears` routes: the regular-expression match. */
  match: RegExpExecArray | null
  db: Kysely<Database>
  /** The community's calendar and check-in rules. */
  community: CommunitySettings
  /** Outbound calls (QR codes …) of the push's account. */
  wechat: WechatAccess
  /** Who is speaking and where: the OA chat, or a group through the WeCom AI bot. */
  channel: ChannelIdentity
  clock: Clock
  logger: Logger
  t: Translate
}

/** Community-wide settings handlers read. */
export interface CommunitySettings {
  timeZone: string
  checkin: CheckinSettings
  invites: InviteSettings
  /** Internal groups' robot webhooks (announcements). */
  robots: GroupRobots
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
