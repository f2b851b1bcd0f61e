/**
 * 商城订单 → 评价: the shop's product reviews, newest first and paged (`listReviews`, the API's
 * read), filtered by product and by shown/hidden, and hidden or shown again by operators and owners
 * (`hideReview` / `unhideReview`, the API's audited actions: hiding takes the review's points back
 * through the ledger as far as the balance holds, showing again gives back what was taken).
 */
import { hideReview, unhideReview } from '../../admin/actions/review-actions.js'
import { listProducts } from '../../admin/reads/shop-reads.js'
import { listReviews } from '../../community/reviews.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Notice } from '../components/form.js'
import { beforeOf, listHref, Pager } from '../components/pager.js'
import { actorOf, type ConsoleContext, ConsoleRefusal, requireRole } from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { memberHref } from './members.js'
import { PAGE, SelectFilter, ShopTabs, shopOf } from './shop-kit.js'

const PATH = '/shop/reviews'
const STATES = ['visible', 'hidden'] as const
const FILTERS = ['sku', 'status', 'before'] as const

/** The list as the request filters it: the form actions and redirects keep these. */
const here = (c: ConsoleContext, set: Record<string, string> = {}) =>
  listHref(c, { path: `/console${PATH}`, keep: FILTERS }, set)

/** Where a review's hide or unhide form posts (the list's filters kept for the way back). */
const actionHref = (c: ConsoleContext, id: number, to: 'hide' | 'unhide') =>
  listHref(c, { path: `/console${PATH}/${id}/${to}`, keep: FILTERS })

/** What an action did, as the notice above the list says it (from the redirect's query). */
function doneText(c: ConsoleContext): string | undefined {
  const { t } = c.var
  const done = c.req.query('done') ?? ''
  const id = c.req.query('id') ?? ''
  if (!/^\d{1,15}$/.test(id)) return undefined
  const points = Number(c.req.query('points') ?? 0)
  const shortfall = Number(c.req.query('shortfall') ?? 0)
  if (done === 'hidden' && shortfall > 0)
    return t('shop.review.done.shortfall', { id, points, shortfall })
  if (!['hidden', 'visible', 'already_hidden', 'already_visible'].includes(done)) return undefined
  return t(`shop.review.done.${done}` as MessageKey, { id, points })
}

export const shopReviewsPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt, session } = c.var
      const shop = shopOf(deps)
      const appid = shop.settings.appid
      const products = await listProducts(deps.db, shop, deps.clock.now())
      const askedSku = c.req.query('sku') ?? ''
      const sku = products.find((p) => p.sku === askedSku)?.sku
      const askedStatus = c.req.query('status') ?? ''
      const status = STATES.find((s) => s === askedStatus)
      const rows = await listReviews(deps.db, {
        appid,
        sku,
        status,
        before: beforeOf(c),
        limit: PAGE + 1,
      })
      const more = rows.length > PAGE
      const reviews = rows.slice(0, PAGE)
      const acts = session.operator.role !== 'viewer'
      return renderPage(
        c,
        { title: t('shop.reviews'), section: 'shop' },
        <>
          <ShopTabs t={t} current="/console/shop/reviews" appid={appid} />
          <Notice kind="ok" text={doneText(c)} />
          <section class="card">
            <p class="muted">{t('shop.reviews.hint')}</p>
            <SelectFilter
              t={t}
              action={`/console${PATH}`}
              id="review-product"
              name="sku"
              label={t('shop.review.product')}
              value={sku ?? ''}
              options={[
                ['', t('shop.all')],
                ...products.map((p): [string, string] => [p.sku, `${p.name}（${p.sku}）`]),
              ]}
              also={[
                {
                  id: 'review-status',
                  name: 'status',
                  label: t('shop.review.state'),
                  value: status ?? '',
                  options: [
                    ['', t('shop.all')],
                    ...STATES.map((s): [string, string] => [s, t(`shop.review.${s}`)]),
                  ],
                },
              ]}
            />
          </section>
          <section class="card" aria-labelledby="reviews">
            <h2 id="reviews">{t('shop.reviews')}</h2>
            <DataTable
              rows={reviews}
              empty={t('common.empty')}
              columns={[
                { label: '#', num: true, cell: (r) => `#${r.id}` },
                {
                  label: t('shop.review.product'),
                  cell: (r) => (
                    <a href={`/console/shop/products/${encodeURIComponent(r.sku)}`}>
                      {r.product_name}
                    </a>
                  ),
                },
                {
                  label: t('shop.review.member'),
                  cell: (r) => (
                    <a
                      href={
                        r.member_appid === appid
                          ? memberHref(r.openid, c.req.query('appid'))
                          : memberHref(r.openid, appid, true)
                      }
                      class="wrap"
                    >
                      {r.display_name ?? r.openid}
                    </a>
                  ),
                },
                {
                  label: t('shop.review.rating'),
                  cell: (r) => `${'★'.repeat(r.rating)} ${r.rating}/5`,
                },
                { label: t('shop.review.text'), cell: (r) => <span class="wrap">{r.body}</span> },
                { label: t('shop.review.points'), num: true, cell: (r) => fmt.count(r.points) },
                {
                  label: t('shop.review.state'),
                  cell: (r) =>
                    r.status === 'hidden' && r.hidden_at ? (
                      <>
                        {t('shop.review.hidden')}
                        <span class="muted">
                          {' '}
                          ·{' '}
                          {t('shop.review.hiddenAt', {
                            at: fmt.dateTime(r.hidden_at),
                            points: fmt.count(r.reversed_points),
                          })}
                        </span>
                      </>
                    ) : (
                      t('shop.review.visible')
                    ),
                },
                { label: t('shop.review.time'), cell: (r) => fmt.dateTime(r.created_at) },
                ...(acts
                  ? [
                      {
                        label: '',
                        cell: (r: (typeof reviews)[number]) => {
                          const to = r.status === 'hidden' ? 'unhide' : 'hide'
                          return (
                            <form method="post" action={actionHref(c, r.id, to)}>
                              <CsrfField token={session.csrfToken} />
                              <button
                                type="submit"
                                class="secondary"
                                aria-label={t(`shop.review.${to}Label`, { id: r.id })}
                              >
                                {t(`shop.review.${to}`)}
                              </button>
                            </form>
                          )
                        },
                      },
                    ]
                  : []),
              ]}
            />
            <Pager
              c={c}
              path={`/console${PATH}`}
              keep={['sku', 'status']}
              anchor="reviews"
              older={more ? reviews.at(-1)?.id : undefined}
            />
          </section>
        </>,
      )
    })

    for (const to of ['hide', 'unhide'] as const)
      app.post(`${PATH}/:id/${to}`, requireRole('owner', 'operator'), async (c) => {
        const shop = shopOf(deps)
        const id = c.req.param('id') ?? ''
        if (!/^\d{1,15}$/.test(id)) throw new ConsoleRefusal(404, 'shop.error.noReview')
        const act = to === 'hide' ? hideReview : unhideReview
        const r = await act(deps, actorOf(c), { appid: shop.settings.appid, id: Number(id) })
        if (r.status === 'not_found') throw new ConsoleRefusal(404, 'shop.error.noReview')
        const points = r.status === 'hidden' ? r.reversed : r.status === 'visible' ? r.restored : 0
        return c.redirect(
          here(c, {
            done: r.status,
            id,
            points: String(points),
            ...(r.status === 'hidden' && r.shortfall > 0 ? { shortfall: String(r.shortfall) } : {}),
          }),
          303,
        )
      })
  },
}
