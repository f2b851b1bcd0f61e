/**
 * 排行榜 / rank: this week's top 10 (or all time with 「排行榜 总」), with the asker's own rank; in a
 * group, among that group's members. Members appear by their 昵称, else by a masked tag.
 */
import type { Router } from '../src/bot/router.js'
import { shownName } from '../src/community/display-names.js'
import { leaderboard } from '../src/community/leaderboard.js'
import { text } from '../src/wechat/reply.js'

const ALL_TIME = new Set(['总', '总榜', '全部', 'all', 'total'])

export function register(router: Router): void {
  router.command(
    {
      names: ['排行榜', 'rank', 'leaderboard', '排行'],
      description: 'command.leaderboard',
      group: 'points',
    },
    async (ctx) => {
      const period = ALL_TIME.has(ctx.args.toLowerCase()) ? 'all' : 'week'
      const board = await leaderboard(ctx.db, {
        appid: ctx.account.appid,
        period,
        memberId: ctx.member.id,
        now: ctx.clock.now(),
        timeZone: ctx.community.timeZone,
        group: ctx.channel.chatId
          ? { channel: ctx.channel.kind, chatId: ctx.channel.chatId }
          : undefined,
      })
      const lines = [ctx.t(period === 'all' ? 'leaderboard.all' : 'leaderboard.week')]
      if (ctx.channel.chatId) lines[0] = `${lines[0]}${ctx.t('leaderboard.groupSuffix')}`
      if (board.entries.length === 0) lines.push(ctx.t('leaderboard.empty'))
      for (const e of board.entries) {
        const shown = shownName({ openid: e.openid, display_name: e.displayName }, ctx.t)
        const name =
          e.memberId !== ctx.member.id
            ? shown
            : e.displayName
              ? ctx.t('leaderboard.youNamed', { name: shown })
              : ctx.t('leaderboard.you')
        lines.push(ctx.t('leaderboard.line', { rank: e.rank, name, points: e.points }))
      }
      lines.push(board.me ? ctx.t('leaderboard.me', board.me) : ctx.t('leaderboard.meNone'))
      return text(lines.join('\n'))
    },
  )
}
