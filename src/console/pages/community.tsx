/**
 * 社群 → 群与进群二维码: the groups the engine has seen members in, with member, follower and
 * moderator counts, and the inviters' WeCom join QRs (state = invite scene) — each a page at a time,
 * read with the admin API's functions (community-reads.ts). 管理员 and 审计日志 are the section's
 * other pages.
 */
import { COMMUNITY_PAGE, listGroups, listJoinWays } from '../../admin/reads/community-reads.js'
import { DataTable } from '../components/data-table.js'
import { OffsetPager, offsetOf } from '../components/pager.js'
import { accountOf } from '../context.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { CommunityTabs } from './community-tabs.js'
import { memberHref } from './members.js'

const PATH = '/community'
const CHANNELS = ['wecom_customer', 'wecom_aibot', 'oa']

/** A channel's name, or the channel itself when it has none (`bridge:<id>`). */
export const channelName = (t: Translate, channel: string) =>
  CHANNELS.includes(channel) ? t(`community.channel.${channel}` as MessageKey) : channel

export const communityPage: ConsolePage = {
  section: 'community',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt } = c.var
      const appid = accountOf(c)
      const groupsAt = offsetOf(c, 'groups')
      const waysAt = offsetOf(c, 'ways')
      const [groups, ways] = await Promise.all([
        listGroups(deps.db, appid, { offset: groupsAt }),
        listJoinWays(deps.db, appid, { offset: waysAt }),
      ])
      return renderPage(
        c,
        { title: t('community.title'), section: 'community' },
        <>
          <CommunityTabs t={t} current="/console/community" />
          <section class="card" aria-labelledby="groups">
            <h2 id="groups">{t('community.groups')}</h2>
            <p class="muted">{t('community.groupsHint')}</p>
            <DataTable
              rows={groups.rows}
              empty={t('common.empty')}
              columns={[
                { label: t('community.chatId'), cell: (g) => <code class="wrap">{g.chatId}</code> },
                { label: t('community.channel'), cell: (g) => channelName(t, g.channel) },
                { label: t('community.members'), num: true, cell: (g) => fmt.count(g.members) },
                { label: t('community.followers'), num: true, cell: (g) => fmt.count(g.followers) },
                {
                  label: t('community.moderatorCount'),
                  num: true,
                  cell: (g) => fmt.count(g.moderators),
                },
                { label: t('community.lastSeen'), cell: (g) => fmt.dateTime(g.lastSeenAt) },
              ]}
            />
            <OffsetPager
              c={c}
              path={`/console${PATH}`}
              keep={['ways']}
              param="groups"
              offset={groupsAt}
              size={COMMUNITY_PAGE}
              more={groups.more}
              label={t('community.groups')}
            />
          </section>
          <section class="card" aria-labelledby="join-ways">
            <h2 id="join-ways">{t('community.joinWays')}</h2>
            <p class="muted">{t('community.joinWaysHint')}</p>
            <DataTable
              rows={ways.rows}
              empty={t('common.empty')}
              columns={[
                {
                  label: t('community.inviter'),
                  cell: (w) => (
                    <a class="wrap" href={memberHref(w.openid, c.req.query('appid'))}>
                      {w.openid}
                    </a>
                  ),
                },
                { label: t('community.state'), cell: (w) => <code class="wrap">{w.state}</code> },
                {
                  label: t('community.configId'),
                  cell: (w) => <code class="wrap">{w.configId}</code>,
                },
                {
                  label: t('community.qr'),
                  cell: (w) =>
                    /^https?:\/\//.test(w.qrCode) ? (
                      <a href={w.qrCode} rel="noreferrer noopener" target="_blank">
                        {t('community.openQr')}
                      </a>
                    ) : (
                      <code class="wrap">{w.qrCode}</code>
                    ),
                },
                { label: t('community.createdAt'), cell: (w) => fmt.dateTime(w.createdAt) },
              ]}
            />
            <OffsetPager
              c={c}
              path={`/console${PATH}`}
              keep={['groups']}
              param="ways"
              offset={waysAt}
              size={COMMUNITY_PAGE}
              more={ways.more}
              label={t('community.joinWays')}
            />
          </section>
        </>,
      )
    })
  },
}
