/** A bot context for router and handler unit tests: the push's message, placeholders elsewhere. */
import type { BotContext } from '../src/bot/context.js'
import { translator } from '../src/bot/i18n.js'
import { Router } from '../src/bot/router.js'
import { DEFAULT_INVITE_SETTINGS } from '../src/community/invites.js'
import type { RecordedMember } from '../src/community/members.js'
import type { CommunityContext } from '../src/inbound/community-context.js'
import { silentLogger } from '../src/logger.js'
import type { InboundMessage } from '../src/wechat/message.js'

/**
 * The context the router would get for `message`; the member and the database are placeholders
 * (a handler that reads them needs a real dispatch).
 */
export function botContext(message: InboundMessage, locale: 'zh-CN' | 'en' = 'zh-CN'): BotContext {
  const community: CommunityContext = {
    member: {} as RecordedMember,
    db: undefined as never,
    community: {
      timeZone: 'Asia/Shanghai',
      checkin: { streakBonuses: {} },
      invites: DEFAULT_INVITE_SETTINGS,
      robots: { keys: {}, baseUrl: 'http://unused' },
    },
    channel: { kind: 'oa', externalId: message.fromUserName },
  }
  return {
    account: { appid: 'wx', locale },
    message,
    text: Router.textOf(message),
    args: '',
    match: null,
    wechat: { api: () => undefined, qrImageBase: 'https://mp.weixin.qq.com' },
    clock: { now: () => new Date() },
    logger: silentLogger,
    t: translator(locale),
    ...community,
  }
}
