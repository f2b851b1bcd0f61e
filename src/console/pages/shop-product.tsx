/**
 * 商城订单 → 商品 → one product: its settings and the edit form (name, price, stock, per-member
 * limit, sale window, on/off), validated by `updateProductInput` and saved by `updateProduct`.
 */
import * as v from 'valibot'
import { updateProduct, updateProductInput } from '../../admin/actions/product-actions.js'
import { listProducts } from '../../admin/reads/shop-reads.js'
import type { Product } from '../../db/schema.js'
import { Notice } from '../components/form.js'
import {
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { productState, windowOf } from './shop.js'
import { ShopTabs, shopOf } from './shop-kit.js'
import {
  ProductForm,
  type ProductFormErrors,
  type ProductFormValues,
  productFormErrors,
  productValues,
  readProductForm,
  updateProductBody,
} from './shop-product-form.js'

const PATH = '/shop/products/:sku'

async function productOf(c: ConsoleContext, deps: ConsoleDeps): Promise<Product> {
  const shop = shopOf(deps)
  const sku = c.req.param('sku') ?? ''
  const found = (await listProducts(deps.db, shop, deps.clock.now())).find((p) => p.sku === sku)
  if (!found) throw new ConsoleRefusal(404, 'shop.error.noProduct')
  return found
}

function show(
  c: ConsoleContext,
  deps: ConsoleDeps,
  p: Product,
  form?: { values: ProductFormValues; errors: ProductFormErrors },
) {
  const { t, fmt, session } = c.var
  const local = (d: Date) => fmt.dateTime(d).replace(' ', 'T')
  const acts = session.operator.role !== 'viewer'
  return renderPage(
    c,
    { title: p.name, section: 'shop' },
    <>
      <ShopTabs t={t} current="/console/shop" appid={shopOf(deps).settings.appid} />
      <section class="card" aria-labelledby="product">
        <h2 id="product">
          <code>{p.sku}</code> · {t(`shop.kind.${p.kind}`)}
        </h2>
        <ul class="list">
          <li>
            {t('shop.product.price')}：{fmt.fen(p.price_fen)}
          </li>
          <li>
            {t('shop.product.window')}：{windowOf(t, fmt, p)}
          </li>
          <li>
            {t('shop.product.state')}：{t(`shop.state.${productState(p, deps.clock.now())}`)}
          </li>
        </ul>
      </section>
      {acts && (
        <section class="card" aria-labelledby="edit">
          <h2 id="edit">{t('shop.product.edit')}</h2>
          <Notice kind="error" text={form ? t('shop.error.form') : undefined} />
          <ProductForm
            t={t}
            edit
            action={`/console/shop/products/${encodeURIComponent(p.sku)}`}
            csrf={session.csrfToken}
            values={form?.values ?? productValues(p, local)}
            errors={form?.errors ?? {}}
            timeZone={deps.timeZone}
          />
        </section>
      )}
    </>,
    form ? 400 : 200,
  )
}

export const shopProductPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => show(c, deps, await productOf(c, deps)))

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const p = await productOf(c, deps)
      const values = readProductForm(await c.req.parseBody())
      const before = productValues(p, (d) => c.var.fmt.dateTime(d).replace(' ', 'T'))
      const merged = { ...values, sku: p.sku, kind: p.kind }
      const parsed = v.safeParse(
        updateProductInput,
        updateProductBody(merged, before, deps.timeZone),
      )
      if (!parsed.success)
        return show(c, deps, p, { values: merged, errors: productFormErrors(parsed.issues) })
      if (Object.keys(parsed.output).length > 0) {
        const r = await updateProduct({ ...deps, shop: shopOf(deps) }, actorOf(c), {
          ...parsed.output,
          sku: p.sku,
        })
        if (r.status === 'refused')
          return show(c, deps, p, { values: merged, errors: { endsAt: 'shop.error.window' } })
      }
      return c.redirect(`/console/shop?saved=${encodeURIComponent(p.sku)}`, 303)
    })
  },
}
