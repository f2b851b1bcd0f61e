/**
 * The catalog: membership plans (30/90/365 days, a tier whose members pay a discounted price
 * elsewhere), flash sales (price, stock, window, per-member limit) and group buys (拼团: participants
 * required, at most, hours to fill). Prices only ever come from here, in integer fen.
 */
import type { Kysely } from 'kysely'
import type { Database, Product } from '../db/schema.js'
import type { TransferSettings } from './transfer-bills.js'

/** Shop settings (from configuration). */
export interface ShopSettings {
  /** The official account the shop belongs to (its products, orders and points). */
  appid: string
  /** The mini program that pays (bound to the merchant). */
  mpAppid: string
  /** WeChat Pay calls this URL with notifications: https://…/pay/notify. */
  notifyUrl: string
  /** How long an unpaid order holds its stock. */
  orderMinutes: number
  /** Group-buy defaults for new group-buy products. */
  groupBuy: { size: number; max: number; hours: number }
  /** Days a purchase's points stay frozen (its refund window) before they are released. */
  pointsFreezeDays: number
  /** What cashback transfer bills say; DEFAULT_TRANSFER_SETTINGS when absent. */
  transfer?: TransferSettings
}

/** The catalog a new shop starts with. */
export function defaultProducts(s: ShopSettings) {
  const plan = (sku: string, name: string, price: number, days: number) => ({
    sku,
    kind: 'membership' as const,
    name,
    price_fen: price,
    membership_days: days,
    tier: 'vip',
    discount_percent: 90,
  })
  return [
    plan('vip-30', 'VIP 会员 30 天', 3000, 30),
    plan('vip-90', 'VIP 会员 90 天', 8000, 90),
    plan('vip-365', 'VIP 会员 365 天', 29800, 365),
    {
      sku: 'flash-tea',
      kind: 'flash_sale' as const,
      name: '限时秒杀：明前龙井 100g',
      price_fen: 990,
      stock: 100,
      per_member_limit: 1,
    },
    {
      sku: 'group-gift',
      kind: 'group_buy' as const,
      name: '三人拼团：精美礼盒',
      price_fen: 1990,
      stock: 500,
      per_member_limit: 2,
      group_size: s.groupBuy.size,
      group_max: s.groupBuy.max,
      group_hours: s.groupBuy.hours,
    },
  ]
}

/** Seeds the default catalog for a shop that has none (safe to call concurrently). */
export async function ensureDefaultProducts(db: Kysely<Database>, s: ShopSettings, now: Date) {
  const any = await db
    .selectFrom('products')
    .select('id')
    .where('appid', '=', s.appid)
    .limit(1)
    .executeTakeFirst()
  if (any) return
  await db
    .insertInto('products')
    .values(defaultProducts(s).map((p) => ({ ...p, appid: s.appid, created_at: now })))
    .onConflict((oc) => oc.columns(['appid', 'sku']).doNothing())
    .execute()
}

/** A member's active membership, if any. */
export function activeMembership(db: Kysely<Database>, memberId: number, now: Date) {
  return db
    .selectFrom('memberships')
    .selectAll()
    .where('member_id', '=', memberId)
    .where('expires_at', '>', now)
    .executeTakeFirst()
}

/**
 * What a member pays for a product: members of a tier pay its discount on everything but plans.
 * A discounted price that falls between two fen is rounded down — in the buyer's favour, never the
 * merchant's (1990 fen at 95 % is 1890, not 1891) — and is at least 1 fen. Integer arithmetic only.
 */
export function priceFor(product: Product, membership?: { discount_percent: number }): number {
  if (product.kind === 'membership' || !membership) return product.price_fen
  return Math.max(1, Math.floor((product.price_fen * membership.discount_percent) / 100))
}

/** Whether a product is on sale at `now`. */
export function onSale(p: Product, now: Date): 'ok' | 'disabled' | 'not_started' | 'ended' {
  if (!p.enabled) return 'disabled'
  if (p.starts_at && p.starts_at > now) return 'not_started'
  if (p.ends_at && p.ends_at <= now) return 'ended'
  return 'ok'
}

/** The template-message link to a product's mini-program page (opaque ids only, never prices). */
export function miniProgramLink(
  s: Pick<ShopSettings, 'mpAppid'>,
  product: { sku: string },
  extra: Record<string, string> = {},
): { appid: string; pagepath: string } {
  const query = new URLSearchParams({ sku: product.sku, ...extra })
  return { appid: s.mpAppid, pagepath: `pages/product/index?${query}` }
}
