/**
 * The safety net under every text the bot answers with, on every channel: one over the channel's
 * byte limit (the OA's and the bridge's 2047, the WeCom AI bot's 20480) is cut by fitText
 * (text-budget.ts) with 「…（内容太长，后面的没有显示）」 and the handler named in a
 * `REPLY_TOO_LONG` warning. Lists fit by paging; this catches what nothing sized.
 */
import type { Translate } from '../bot/i18n.js'
import type { Logger } from '../logger.js'
import { fitText } from '../wechat/text-budget.js'

/** Where a reply goes and who made it, for {@link fitReplyText}. */
export interface ReplyBudget {
  /** The most UTF-8 bytes the channel takes in one text. */
  maxBytes: number
  /** What answered (a command's first name…), for the warning. */
  handler: string | null
  t: Translate
  log: Logger
}

/**
 * `content`, or its head that fits `b.maxBytes` with the truncation marker (logged).
 * @example fitReplyText(reply, { maxBytes: TEXT_MAX_BYTES, handler: '活动', t, log })
 */
export function fitReplyText(content: string, b: ReplyBudget): string {
  // a UTF-16 unit is at most 3 UTF-8 bytes: most replies need no count (the push path's cost)
  if (content.length * 3 <= b.maxBytes) return content
  const fitted = fitText(content, { marker: b.t('reply.truncated'), maxBytes: b.maxBytes })
  if (!fitted.cut) return content
  b.log.warn('text reply over the byte budget; cut', {
    code: 'REPLY_TOO_LONG',
    handler: b.handler,
    bytes: fitted.bytes,
    maxBytes: b.maxBytes,
  })
  return fitted.content
}
