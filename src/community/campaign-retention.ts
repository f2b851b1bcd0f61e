/**
 * Retention of campaign recipients: the recipients of runs older than the retention (and past
 * their conversion window) are rolled up into `campaign_rollups` — per (campaign, slot, variant),
 * the counts `campaignReport` shows, by the same definition (`recipientCounts`, each push's
 * outcome by `pushOutcomes`) — and deleted, batch by batch, each batch one statement
 * (delete … returning, aggregated, added to the rollup), so reports read the same before and
 * after, and concurrent pruners never count a recipient twice (batches are taken with SKIP LOCKED,
 * a row deleted by another is not returned). Then a cron run's row is deleted; a one-shot run's row
 * stays (marked `pruned_at`) because it is what keeps the one-shot from being sent again, and so
 * does a cron campaign's last run when it left no rollup (it reached nobody): a campaign that
 * has run is never editable again (campaign-edit.ts).
 *
 * Tracked links (`/r/<code>`) of pruned recipients no longer redirect.
 */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { recipientCounts } from './campaign-counts.js'

/** How long campaign recipients are kept (from configuration). */
export interface CampaignRetentionSettings {
  /** Days after its slot a run's recipients are rolled up and deleted (at least 61). */
  recipientsRetentionDays: number
}

/** What a prune did. */
export interface CampaignPruneResult {
  /** Runs whose recipients were all rolled up. */
  runs: number
  /** Recipient rows rolled up and deleted. */
  recipients: number
}

/**
 * Rolls up and deletes the recipients of finished runs (enqueued or stopped) whose slot is more
 * than `retentionDays` ago and whose campaign's conversion window has closed.
 * @example await pruneCampaignRecipients(db, { now: clock.now(), retentionDays: 180 })
 */
export async function pruneCampaignRecipients(
  db: Kysely<Database>,
  o: { now: Date; retentionDays: number; batchSize?: number },
): Promise<CampaignPruneResult> {
  const cutoff = new Date(o.now.getTime() - o.retentionDays * 86_400_000)
  const runs = await db
    .selectFrom('campaign_runs as r')
    .innerJoin('campaigns as c', 'c.id', 'r.campaign_id')
    .select(['r.campaign_id', 'r.slot', 'c.schedule_cron'])
    .where('r.pruned_at', 'is', null)
    .where('r.slot', '<', cutoff)
    .where('r.status', 'in', ['enqueued', 'stopped'])
    .where(sql<boolean>`r.slot < ${o.now}::timestamptz - make_interval(days => c.conversion_days)`)
    .orderBy('r.slot')
    .execute()
  const result: CampaignPruneResult = { runs: 0, recipients: 0 }
  for (const run of runs) {
    for (;;) {
      const n = await rollUpBatch(db, run.campaign_id, run.slot, o.batchSize ?? 5_000)
      result.recipients += n
      if (n === 0) break
    }
    // Only once no recipient is left (a batch skipped as locked stays for the next prune).
    const left = db
      .selectFrom('campaign_recipients as x')
      .select('x.member_id')
      .where('x.campaign_id', '=', run.campaign_id)
      .where('x.slot', '=', run.slot)
    // A cron run's row goes when something else shows the campaign ran (its rollups, or a later
    // run); the last one of a campaign that reached nobody stays, marked, like a one-shot's.
    const shown = db
      .selectFrom('campaign_rollups as u')
      .select('u.campaign_id')
      .where('u.campaign_id', '=', run.campaign_id)
      .union(
        db
          .selectFrom('campaign_runs as n')
          .select('n.campaign_id')
          .where('n.campaign_id', '=', run.campaign_id)
          .where('n.slot', '>', run.slot),
      )
    const deleted =
      run.schedule_cron &&
      (await db
        .deleteFrom('campaign_runs')
        .where('campaign_id', '=', run.campaign_id)
        .where('slot', '=', run.slot)
        .where(({ not, exists }) => not(exists(left)))
        .where(({ exists }) => exists(shown))
        .returning('slot')
        .executeTakeFirst())
    const done =
      deleted ||
      (await db
        .updateTable('campaign_runs')
        .set({ pruned_at: o.now })
        .where('campaign_id', '=', run.campaign_id)
        .where('slot', '=', run.slot)
        .where(({ not, exists }) => not(exists(left)))
        .returning('slot')
        .executeTakeFirst())
    if (done) result.runs++
  }
  return result
}

/** Moves up to `limit` recipients of one run into its rollups; returns how many. */
async function rollUpBatch(db: Kysely<Database>, campaignId: number, slot: Date, limit: number) {
  const { rows } = await rollUpBatchStatement(campaignId, slot, limit).execute(db)
  return rows[0]!.n
}

/** The one statement of {@link rollUpBatch} (exported for its plan test). */
export function rollUpBatchStatement(campaignId: number, slot: Date, limit: number) {
  return sql<{ n: number; v: number }>`
    with batch as (
      select member_id from campaign_recipients
      where campaign_id = ${campaignId} and slot = ${slot}
      order by member_id
      limit ${limit}
      for update skip locked
    ), gone as (
      -- each by its whole key (campaign_id, slot, member_id): the batch as an array probed in the
      -- primary key. Joined to the batch (using batch b), a run's recipients planned without
      -- statistics were read once per row of the batch (a nested loop, the batch's scan inside):
      -- run × batch rows, 4,000,000 for a run to 2,000 members (campaign-plans.test.ts)
      delete from campaign_recipients r
      where r.campaign_id = ${campaignId} and r.slot = ${slot}
        and r.member_id = any(array(select member_id from batch))
      returning r.*
    ), outbox_gone as (
      -- their finished outbox items go too (counted below from this statement's snapshot)
      delete from push_outbox o using gone g, campaigns c, members m
      where c.id = g.campaign_id and m.id = g.member_id and o.appid = c.appid
        and o.source = g.outbox_source and o.openid = m.openid
        and o.status in ('sent', 'failed', 'skipped', 'cancelled', 'unknown')
      returning 1
    ), counts as (
      -- as campaignReport counts live recipients (one list of push outcomes)
      select g.variant, ${recipientCounts('g')}
      from gone g
      join campaigns c on c.id = g.campaign_id
      join members m on m.id = g.member_id
      left join push_outbox o
        on o.appid = c.appid and o.source = g.outbox_source and o.openid = m.openid
      -- a receipt that raced the send's result write is only in push_receipts
      left join push_receipts rc on rc.appid = o.appid and rc.msgid = o.wechat_msgid
      group by g.variant
    ), added as (
      insert into campaign_rollups as t (campaign_id, slot, variant, audience, enqueued, capped,
        opted_out, unreachable, sent, failed, withdrawn_opted_out, cancelled, unknown, delivered,
        clicked, converted, redeemed)
      select ${campaignId}, ${slot}::timestamptz, variant, audience, enqueued, capped, opted_out,
        unreachable, sent, failed, withdrawn_opted_out, cancelled, unknown, delivered, clicked,
        converted, redeemed
      from counts
      on conflict (campaign_id, slot, variant) do update set
        audience = t.audience + excluded.audience,
        enqueued = t.enqueued + excluded.enqueued,
        capped = t.capped + excluded.capped,
        opted_out = t.opted_out + excluded.opted_out,
        unreachable = t.unreachable + excluded.unreachable,
        sent = t.sent + excluded.sent,
        failed = t.failed + excluded.failed,
        withdrawn_opted_out = t.withdrawn_opted_out + excluded.withdrawn_opted_out,
        cancelled = t.cancelled + excluded.cancelled,
        unknown = t.unknown + excluded.unknown,
        delivered = t.delivered + excluded.delivered,
        clicked = t.clicked + excluded.clicked,
        converted = t.converted + excluded.converted,
        redeemed = t.redeemed + excluded.redeemed
      returning 1
    )
    select (select count(*) from gone)::int as n, (select count(*) from added)::int as v`
}
