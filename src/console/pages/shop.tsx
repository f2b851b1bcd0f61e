/**
 * 商城订单 → 商品: the catalog (`listProducts`, the API's read, seeded with the defaults) — kind,
 * price, stock, per-member limit, the sale window and whether it is on now — and the create form
 * (`createProductInput` + `createProductProblem`, the API's checks; `createProduct`). Flash sales
 * are products of kind flash_sale with a window and stock.
 */
import * as v from 'valibot'
import {
  createProduct,
  createProductInput,
  createProductProblem,
  SALE_WINDOW_PROBLEM,
} from '../../admin/actions/product-actions.js'
import { listProducts } from '../../admin/reads/shop-reads.js'
import type { Product } from '../../db/schema.js'
import { DataTable } from '../components/data-table.js'
import { Notice } from '../components/form.js'
import { actorOf, type ConsoleContext, type ConsoleDeps, requireRole } from '../context.js'
import type { Format } from '../format.js'
import type { Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { ShopTabs, shopOf } from './shop-kit.js'
import {
  BLANK_PRODUCT,
  createProductBody,
  ProductForm,
  type ProductFormErrors,
  type ProductFormValues,
  productFormErrors,
  readProductForm,
} from './shop-product-form.js'

const PATH = '/shop'

/** Whether a product sells now: off, not yet, over, sold out, or on. */
export function productState(p: Product, now: Date) {
  if (!p.enabled) return 'off' as const
  if (p.starts_at && p.starts_at > now) return 'upcoming' as const
  if (p.ends_at && p.ends_at <= now) return 'ended' as const
  if (p.stock === 0) return 'soldOut' as const
  return 'on' as const
}

/** A product's sale window, or 长期 when it has none. */
export function windowOf(t: Translate, fmt: Format, p: Product) {
  if (!p.starts_at && !p.ends_at) return t('shop.window.always')
  return `${p.starts_at ? fmt.dateTime(p.starts_at) : '…'} – ${p.ends_at ? fmt.dateTime(p.ends_at) : '…'}`
}

/** What only its kind has: a membership's days, a group buy's size, maximum and hours. */
function kindDetail(t: Translate, p: Product) {
  if (p.kind === 'membership')
    return t('shop.detail.membership', { days: p.membership_days ?? 0, tier: p.tier ?? '' })
  if (p.kind === 'group_buy')
    return t('shop.detail.groupBuy', {
      size: p.group_size ?? 0,
      max: p.group_max ?? 0,
      hours: p.group_hours ?? 0,
    })
  return ''
}

async function list(
  c: ConsoleContext,
  deps: ConsoleDeps,
  form?: { values: ProductFormValues; errors: ProductFormErrors },
) {
  const { t, fmt, session } = c.var
  const shop = shopOf(deps)
  const now = deps.clock.now()
  const products = await listProducts(deps.db, shop, now)
  const q = c.req.query()
  const notice = q.created
    ? t('shop.product.created', { sku: q.created })
    : q.saved
      ? t('shop.product.saved', { sku: q.saved })
      : undefined
  return renderPage(
    c,
    { title: t('shop.title'), section: 'shop' },
    <>
      <ShopTabs t={t} current="/console/shop" appid={shop.settings.appid} />
      <Notice kind="ok" text={notice} />
      <section class="card" aria-labelledby="products">
        <h2 id="products">{t('shop.products')}</h2>
        <DataTable
          rows={products}
          empty={t('common.empty')}
          columns={[
            {
              label: t('shop.product.name'),
              cell: (p) => (
                <a href={`/console/shop/products/${encodeURIComponent(p.sku)}`}>{p.name}</a>
              ),
            },
            { label: t('shop.product.sku'), cell: (p) => <code>{p.sku}</code> },
            { label: t('shop.product.kind'), cell: (p) => t(`shop.kind.${p.kind}`) },
            { label: t('shop.product.price'), num: true, cell: (p) => fmt.fen(p.price_fen) },
            {
              label: t('shop.product.stock'),
              num: true,
              cell: (p) => (p.stock === null ? t('shop.unlimited') : fmt.count(p.stock)),
            },
            {
              label: t('shop.product.perMemberLimit'),
              num: true,
              cell: (p) =>
                p.per_member_limit === null ? t('shop.unlimited') : fmt.count(p.per_member_limit),
            },
            { label: t('shop.product.window'), cell: (p) => windowOf(t, fmt, p) },
            { label: t('shop.product.detail'), cell: (p) => kindDetail(t, p) },
            {
              label: t('shop.product.state'),
              cell: (p) => t(`shop.state.${productState(p, now)}`),
            },
          ]}
        />
      </section>
      {session.operator.role !== 'viewer' && (
        <section class="card" aria-labelledby="new-product">
          <h2 id="new-product">{t('shop.product.new')}</h2>
          <Notice kind="error" text={form ? t('shop.error.form') : undefined} />
          <ProductForm
            t={t}
            action={`/console${PATH}/products`}
            csrf={session.csrfToken}
            values={form?.values ?? BLANK_PRODUCT}
            errors={form?.errors ?? {}}
            timeZone={deps.timeZone}
          />
        </section>
      )}
    </>,
    form ? 400 : 200,
  )
}

export const shopPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => list(c, deps))

    app.post(`${PATH}/products`, requireRole('owner', 'operator'), async (c) => {
      const shop = shopOf(deps)
      const values = readProductForm(await c.req.parseBody())
      const refuse = (errors: ProductFormErrors) => list(c, deps, { values, errors })
      const parsed = v.safeParse(createProductInput, createProductBody(values, deps.timeZone))
      if (!parsed.success) return refuse(productFormErrors(parsed.issues))
      const problem = createProductProblem(parsed.output, shop)
      if (problem)
        return refuse(
          problem === SALE_WINDOW_PROBLEM
            ? { endsAt: 'shop.error.window' }
            : problem.startsWith('membershipDays')
              ? { membershipDays: 'shop.error.membershipDays' }
              : { groupMax: 'shop.error.groupMax' },
        )
      const row = await createProduct({ ...deps, shop }, actorOf(c), parsed.output)
      if (!row) return refuse({ sku: 'shop.error.skuTaken' })
      return c.redirect(`/console${PATH}?created=${encodeURIComponent(row.sku)}`, 303)
    })
  },
}
