/**
 * 商城订单 → 拼团: the group buys, newest first and paged, with their progress — seats paid and
 * joined of those needed, the maximum, the deadline and the state (`pageGroupBuys`).
 */
import {
  GROUP_BUY_STATUSES,
  type GroupBuyStatus,
  pageGroupBuys,
} from '../../admin/reads/group-buys.js'
import { DataTable } from '../components/data-table.js'
import { beforeOf, Pager } from '../components/pager.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { memberHref } from './members.js'
import { PAGE, SelectFilter, ShopTabs, shopOf } from './shop-kit.js'

const PATH = '/shop/group-buys'

export const shopGroupBuysPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt } = c.var
      const shop = shopOf(deps)
      const appid = shop.settings.appid
      const asked = c.req.query('status') ?? ''
      const status = GROUP_BUY_STATUSES.find((s) => s === asked) as GroupBuyStatus | undefined
      const page = await pageGroupBuys(deps.db, shop.settings.appid, {
        status,
        before: beforeOf(c),
        limit: PAGE,
      })
      const now = deps.clock.now()
      return renderPage(
        c,
        { title: t('shop.groupBuys'), section: 'shop' },
        <>
          <ShopTabs t={t} current="/console/shop/group-buys" appid={shop.settings.appid} />
          <section class="card">
            <SelectFilter
              t={t}
              action={`/console${PATH}`}
              id="group-status"
              name="status"
              label={t('shop.groupBuy.state')}
              value={status ?? ''}
              options={[
                ['', t('shop.all')],
                ...GROUP_BUY_STATUSES.map((s): [string, string] => [s, t(`shop.groupBuy.${s}`)]),
              ]}
            />
          </section>
          <section class="card" aria-labelledby="group-buys">
            <h2 id="group-buys">{t('shop.groupBuys')}</h2>
            <DataTable
              rows={page.groupBuys}
              empty={t('common.empty')}
              columns={[
                { label: t('shop.groupBuy.id'), num: true, cell: (g) => `#${g.id}` },
                {
                  label: t('shop.groupBuy.product'),
                  cell: (g) => (
                    <a href={`/console/shop/products/${encodeURIComponent(g.sku)}`}>
                      {g.product_name}
                    </a>
                  ),
                },
                {
                  label: t('shop.groupBuy.leader'),
                  cell: (g) =>
                    g.leader_openid === null ? (
                      '—'
                    ) : (
                      <a
                        class="wrap"
                        href={
                          g.leader_appid === appid
                            ? memberHref(g.leader_openid, c.req.query('appid'))
                            : memberHref(g.leader_openid, appid, true)
                        }
                      >
                        {g.leader_name ?? g.leader_openid}
                      </a>
                    ),
                },
                {
                  label: t('shop.groupBuy.progress'),
                  cell: (g) => (
                    <span>
                      <progress
                        max={g.size_required}
                        value={Math.min(g.paid, g.size_required)}
                        aria-label={t('shop.groupBuy.progressLabel', { id: g.id })}
                      />{' '}
                      {t('shop.groupBuy.progressText', {
                        paid: g.paid,
                        joined: g.joined,
                        needed: g.size_required,
                        max: g.size_max,
                      })}
                    </span>
                  ),
                },
                {
                  label: t('shop.groupBuy.deadline'),
                  cell: (g) =>
                    g.status === 'open' && g.expires_at <= now
                      ? `${fmt.dateTime(g.expires_at)}（${t('shop.groupBuy.overdue')}）`
                      : fmt.dateTime(g.expires_at),
                },
                { label: t('shop.groupBuy.state'), cell: (g) => t(`shop.groupBuy.${g.status}`) },
                {
                  label: t('shop.groupBuy.settled'),
                  cell: (g) => (g.settled_at ? fmt.dateTime(g.settled_at) : '—'),
                },
              ]}
            />
            <Pager
              c={c}
              path={`/console${PATH}`}
              keep={['status']}
              older={page.more ? page.groupBuys.at(-1)?.id : undefined}
            />
          </section>
        </>,
      )
    })
  },
}
