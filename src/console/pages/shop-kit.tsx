/**
 * What the 商城订单 pages share: the section's tabs, the configured shop (refused when there is
 * none), yuan typed into a form as fen, the lists' page size and filter.
 */
import type { Shop } from '../../shop/maintenance.js'
import { SectionTabs } from '../components/section-tabs.js'
import { SelectField } from '../components/select.js'
import { type ConsoleDeps, ConsoleRefusal } from '../context.js'
import type { Translate } from '../i18n.js'

/** The section's pages: 商品 · 拼团 · 订单 · 退款 · 评价 · 对账. */
const TABS = [
  { href: '/console/shop', key: 'shop.tab.products' },
  { href: '/console/shop/group-buys', key: 'shop.tab.groupBuys' },
  { href: '/console/shop/orders', key: 'shop.tab.orders' },
  { href: '/console/shop/refunds', key: 'shop.tab.refunds' },
  { href: '/console/shop/reviews', key: 'shop.tab.reviews' },
  { href: '/console/shop/reconciliation', key: 'shop.tab.reconciliation' },
] as const

export type ShopTab = (typeof TABS)[number]['href']

/** The section's links with the current one marked, and the account the shop belongs to. */
export function ShopTabs(p: { t: Translate; current: ShopTab; appid: string }) {
  return (
    <>
      <SectionTabs t={p.t} label="shop.tabs" tabs={TABS} current={p.current} />
      <p class="muted">{p.t('shop.account', { appid: p.appid })}</p>
    </>
  )
}

/** The configured shop; without one (no MP_* / PAY_*) the page says so (404). */
export function shopOf(deps: ConsoleDeps): Shop {
  if (!deps.shop) throw new ConsoleRefusal(404, 'shop.notConfigured')
  return deps.shop
}

/** Yuan as typed (`12`, `12.5`, `12.50`) in fen; NaN for anything else (the schema refuses it). */
export function yuanToFen(text: string): number {
  const m = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(text.trim())
  if (!m) return Number.NaN
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'))
}

/** Fen as yuan for a form field (`1250` → `12.50`). */
export const fenToYuan = (fen: number) => (fen / 100).toFixed(2)

/** The page size of every list in the section. */
export const PAGE = 50

/** One labelled select of a list's filter. */
interface FilterSelect {
  id: string
  name: string
  label: string
  value: string
  options: [string, string][]
}

/** A list's filter: a labelled select (and `also` more) and its button (a GET form). */
export function SelectFilter(
  p: FilterSelect & { t: Translate; action: string; also?: FilterSelect[] },
) {
  return (
    <form method="get" action={p.action} class="filters">
      {[p, ...(p.also ?? [])].map((f) => (
        <SelectField id={f.id} name={f.name} label={f.label} value={f.value} options={f.options} />
      ))}
      <button type="submit" class="secondary">
        {p.t('shop.filter')}
      </button>
    </form>
  )
}
