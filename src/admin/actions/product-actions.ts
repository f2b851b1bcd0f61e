/** An operator adds products to the shop's catalog and changes them. */
import * as v from 'valibot'
import type { Product } from '../../db/schema.js'
import { int, timestamp } from '../../routes/validate.js'
import type { Shop } from '../../shop/maintenance.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** Whole fen, 1 fen to 1,000,000 元. */
export const fen = v.pipe(
  v.number(),
  v.integer('must be whole fen'),
  v.minValue(1),
  v.maxValue(100_000_000),
)
const count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000_000))
const time = timestamp()
const editable = {
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(127)),
  priceFen: fen,
  stock: v.nullable(count),
  perMemberLimit: v.nullable(int(1)),
  startsAt: v.nullable(time),
  endsAt: v.nullable(time),
}

/** The input of {@link createProduct} (`POST shop/products`). */
export const createProductInput = v.strictObject({
  sku: v.pipe(v.string(), v.regex(/^[a-z0-9-]{1,40}$/, 'lowercase letters, digits and -')),
  kind: v.picklist(
    ['membership', 'flash_sale', 'group_buy'],
    'membership, flash_sale or group_buy',
  ),
  name: editable.name,
  priceFen: fen,
  stock: v.optional(editable.stock, null),
  perMemberLimit: v.optional(editable.perMemberLimit, null),
  startsAt: v.optional(editable.startsAt, null),
  endsAt: v.optional(editable.endsAt, null),
  membershipDays: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3660))),
  tier: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9_-]{1,20}$/))),
  discountPercent: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100))),
  groupSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(50))),
  groupMax: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(100))),
  groupHours: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(168))),
})
export type CreateProductInput = v.InferOutput<typeof createProductInput>

/** The input of {@link updateProduct} (`PATCH shop/products/:sku`): the fields to change. */
export const updateProductInput = v.partial(v.strictObject({ ...editable, enabled: v.boolean() }))
export type UpdateProductInput = v.InferOutput<typeof updateProductInput>

type ShopDeps = Pick<ActionDeps, 'db' | 'clock'> & { shop: Shop }

/** The problem of a sale window that ends before (or when) it starts. */
export const SALE_WINDOW_PROBLEM = 'endsAt: must be after startsAt'

/** Why a sale window cannot be (`SALE_WINDOW_PROBLEM`), if anything: both ends set, end first. */
export function saleWindowProblem(
  startsAt: string | Date | null | undefined,
  endsAt: string | Date | null | undefined,
): string | undefined {
  if (!startsAt || !endsAt) return undefined
  return new Date(endsAt).getTime() <= new Date(startsAt).getTime()
    ? SALE_WINDOW_PROBLEM
    : undefined
}

/**
 * What is wrong with a product input as a whole (a message naming the field), if anything: a
 * membership needs its days; a group buy's maximum may not be below its size; a sale window ends
 * after it starts.
 */
export function createProductProblem(b: CreateProductInput, shop: Shop): string | undefined {
  const missing =
    b.kind === 'membership'
      ? !b.membershipDays && 'membershipDays'
      : b.kind === 'group_buy' &&
          b.groupMax !== undefined &&
          b.groupMax < (b.groupSize ?? shop.settings.groupBuy.size)
        ? 'groupMax'
        : null
  if (missing) return `${missing}: required or too small for a ${b.kind}`
  return saleWindowProblem(b.startsAt, b.endsAt)
}

/**
 * Adds a product to the shop's catalog (kind-specific fields defaulted from the shop's settings);
 * undefined when the SKU exists (nothing changes). Audits `product.create`.
 */
export async function createProduct(
  deps: ShopDeps,
  actor: Actor,
  b: CreateProductInput,
): Promise<Product | undefined> {
  const { appid, groupBuy } = deps.shop.settings
  const now = deps.clock.now()
  const group = b.kind === 'group_buy'
  const membership = b.kind === 'membership'
  const step = { appid, actor, action: 'product.create', target: b.sku, now } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const row = await trx
      .insertInto('products')
      .values({
        appid,
        sku: b.sku,
        kind: b.kind,
        name: b.name,
        price_fen: b.priceFen,
        stock: b.stock,
        per_member_limit: b.perMemberLimit,
        starts_at: b.startsAt,
        ends_at: b.endsAt,
        membership_days: membership ? b.membershipDays! : null,
        tier: membership ? (b.tier ?? 'vip') : null,
        discount_percent: membership ? (b.discountPercent ?? 100) : null,
        group_size: group ? (b.groupSize ?? groupBuy.size) : null,
        group_max: group ? (b.groupMax ?? Math.max(groupBuy.max, b.groupSize ?? 0)) : null,
        group_hours: group ? (b.groupHours ?? groupBuy.hours) : null,
        created_at: now,
      })
      .onConflict((oc) => oc.columns(['appid', 'sku']).doNothing())
      .returningAll()
      .executeTakeFirst()
    return { result: row, details: row && b }
  })
}

/** What `updateProduct` did: the changed product, no such SKU, or why the change was refused. */
export type UpdateProductResult =
  | { status: 'updated'; product: Product }
  | { status: 'unknown' }
  | { status: 'refused'; problem: string }

/**
 * Changes a product's fields (at least one: see `someChange`) under its row lock, refusing a sale
 * window that would end before it starts once merged with the stored ends (nothing changes).
 * Audits `product.update`.
 */
export async function updateProduct(
  deps: ShopDeps,
  actor: Actor,
  input: UpdateProductInput & { sku: string },
): Promise<UpdateProductResult> {
  const { sku, ...b } = input
  const appid = deps.shop.settings.appid
  const step = {
    appid,
    actor,
    action: 'product.update',
    target: sku,
    now: deps.clock.now(),
  } satisfies AuditedStep
  return auditedAction<UpdateProductResult>(deps.db, step, async (trx) => {
    const stored = await trx
      .selectFrom('products')
      .select(['starts_at', 'ends_at'])
      .where('appid', '=', appid)
      .where('sku', '=', sku)
      .forUpdate()
      .executeTakeFirst()
    if (!stored) return { result: { status: 'unknown' } }
    const problem = saleWindowProblem(
      b.startsAt !== undefined ? b.startsAt : stored.starts_at,
      b.endsAt !== undefined ? b.endsAt : stored.ends_at,
    )
    if (problem) return { result: { status: 'refused', problem } }
    const row = await trx
      .updateTable('products')
      .set({
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.priceFen !== undefined ? { price_fen: b.priceFen } : {}),
        ...(b.stock !== undefined ? { stock: b.stock } : {}),
        ...(b.perMemberLimit !== undefined ? { per_member_limit: b.perMemberLimit } : {}),
        ...(b.startsAt !== undefined ? { starts_at: b.startsAt } : {}),
        ...(b.endsAt !== undefined ? { ends_at: b.endsAt } : {}),
        ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
      })
      .where('appid', '=', appid)
      .where('sku', '=', sku)
      .returningAll()
      .executeTakeFirstOrThrow()
    return { result: { status: 'updated', product: row }, details: b, target: row.sku }
  })
}
