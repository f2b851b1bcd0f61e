/** Rows the alert and advice tests need, written straight into the tables (no HTTP). */

import { type Kysely, sql } from 'kysely'
import { addDays } from '../src/community/community-time.js'
import type { Database } from '../src/db/schema.js'

/** `n` members of an account (`<prefix>0` …); returns their ids in order. */
export async function addMembers(
  db: Kysely<Database>,
  appid: string,
  prefix: string,
  n: number,
  at: Date,
  extra: { last_inbound_at?: Date; subscribed?: boolean } = {},
): Promise<number[]> {
  const rows = await db
    .insertInto('members')
    .values(
      Array.from({ length: n }, (_, i) => ({
        appid,
        openid: `${prefix}${i}`,
        first_seen_at: at,
        subscribed: extra.subscribed ?? true,
        last_inbound_at: extra.last_inbound_at ?? null,
      })),
    )
    .returning('id')
    .execute()
  return rows.map((r) => Number(r.id))
}

/** Marks members active on a community day (`member_days`). */
export async function activeOn(db: Kysely<Database>, appid: string, day: string, ids: number[]) {
  if (ids.length === 0) return
  await db
    .insertInto('member_days')
    .values(ids.map((member_id) => ({ appid, day, member_id, kinds: 1 })))
    .onConflict((oc) => oc.doNothing())
    .execute()
}

/** Inbound pushes received at `at`, completed after `seconds` (null: still processing). */
export async function pushes(
  db: Kysely<Database>,
  appid: string,
  o: { n: number; at: Date; seconds: number | null; status?: 'replied' | 'failed'; tag: string },
) {
  await db
    .insertInto('inbound_events')
    .values(
      Array.from({ length: o.n }, (_, i) => ({
        appid,
        dedupe_key: `${o.tag}-${i}`,
        openid: 'o_someone',
        msg_type: 'text',
        event: null,
        status: o.seconds === null ? ('processing' as const) : (o.status ?? 'replied'),
        received_at: o.at,
        completed_at: o.seconds === null ? null : new Date(o.at.getTime() + o.seconds * 1000),
      })),
    )
    .execute()
}

/** A flash-sale product without stock or time limits; returns its id. */
export async function product(
  db: Kysely<Database>,
  appid: string,
  o: { sku: string; fen: number; at: Date },
): Promise<number> {
  const row = await db
    .insertInto('products')
    .values({
      appid,
      sku: o.sku,
      kind: 'flash_sale',
      name: o.sku,
      price_fen: o.fen,
      stock: null,
      per_member_limit: null,
      starts_at: null,
      ends_at: null,
      membership_days: null,
      tier: null,
      discount_percent: null,
      group_size: null,
      group_max: null,
      group_hours: null,
      created_at: o.at,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/** A product and a paid order (with `refund` when given); returns the order id. */
export async function paidOrder(
  db: Kysely<Database>,
  appid: string,
  o: { memberId: number; fen: number; paidAt: Date; no: string },
): Promise<number> {
  const productId = await product(db, appid, { sku: `sku-${o.no}`, fen: o.fen, at: o.paidAt })
  const order = await db
    .insertInto('orders')
    .values({
      appid,
      out_trade_no: o.no,
      member_id: o.memberId,
      mp_openid: 'mp_someone',
      product_id: productId,
      kind: 'flash_sale',
      description: 'item',
      amount_fen: o.fen,
      status: 'paid',
      client_key: null,
      group_buy_id: null,
      prepay_id: null,
      transaction_id: null,
      flag_reason: null,
      expires_at: o.paidAt,
      created_at: o.paidAt,
      paid_at: o.paidAt,
      closed_at: null,
      paid_total_fen: o.fen,
      payer_total_fen: o.fen,
      queried_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(order.id)
}

/** A campaign run: `n` recipients enqueued at `slot`, the first `converted` converting after `after` s. */
export async function campaignRun(
  db: Kysely<Database>,
  o: {
    campaignId: number
    slot: Date
    members: number[]
    converted: number
    afterSeconds?: number
  },
) {
  await db
    .insertInto('campaign_runs')
    .values({
      campaign_id: o.campaignId,
      slot: o.slot,
      status: 'enqueued',
      lease_until: o.slot,
      created_at: o.slot,
      finished_at: o.slot,
    })
    .execute()
  await db
    .insertInto('campaign_recipients')
    .values(
      o.members.map((member_id, i) => ({
        campaign_id: o.campaignId,
        slot: o.slot,
        member_id,
        variant: 'A',
        outcome: 'enqueued' as const,
        outbox_source: null,
        link_code: null,
        target_url: null,
        enqueued_at: o.slot,
        converted_at:
          i < o.converted ? new Date(o.slot.getTime() + (o.afterSeconds ?? 3600) * 1000) : null,
      })),
    )
    .execute()
}

/** Day n after `day0`, and `hour` o'clock in Beijing on day n (UTC+8, no daylight saving). */
export function beijingDays(day0: string) {
  const day = (n: number) => addDays(day0, n)
  const at = (n: number, hour = 10) =>
    new Date(Date.parse(`${day(n)}T00:00:00Z`) + (hour - 8) * 3_600_000)
  return { day, at }
}

/**
 * A campaign_rollups row: `enqueued` sent but 2 (failed), delivered but 3, clicks twice the
 * conversions; none withdrawn, cancelled or unknown.
 */
export const campaignRollup = (
  campaignId: number,
  slot: Date,
  variant: string,
  enqueued: number,
  converted: number,
) => ({
  campaign_id: campaignId,
  slot,
  variant,
  audience: enqueued,
  enqueued,
  capped: 0,
  opted_out: 0,
  unreachable: 0,
  sent: enqueued - 2,
  failed: 2,
  withdrawn_opted_out: 0,
  cancelled: 0,
  unknown: 0,
  delivered: enqueued - 3,
  clicked: converted * 2,
  converted,
})

/** A running campaign of an account; returns its id. */
export async function runningCampaign(db: Kysely<Database>, appid: string, name: string, at: Date) {
  const row = await db
    .insertInto('campaigns')
    .values({
      appid,
      name,
      status: 'running',
      audience: '{}',
      variants: '[]',
      schedule_cron: '0 10 * * *',
      run_at: null,
      created_at: at,
      updated_at: at,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/** The outbox rows queued for an alert (`alert:<id>:…`), as `openid source`. */
export async function alertNotices(db: Kysely<Database>, appid: string) {
  const rows = await db
    .selectFrom('push_outbox')
    .select(['openid', 'source', 'payload', 'lane', 'kind'])
    .where('appid', '=', appid)
    .where('source', 'like', 'alert:%')
    .orderBy('id')
    .execute()
  return rows
}

/** Rows of `alerts` of an account, oldest first. */
export const alertRows = (db: Kysely<Database>, appid: string) =>
  db.selectFrom('alerts').selectAll().where('appid', '=', appid).orderBy('id').execute()

/** Drops a table if it exists (tests that create optional tables). */
export const dropTable = (db: Kysely<Database>, name: string) =>
  sql`drop table if exists ${sql.id(name)} cascade`.execute(db)
