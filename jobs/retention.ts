/**
 * Nightly retention: deletes rows that are only kept for a while, in bounded batches, one prune
 * step per table, and closes the runs of jobs no longer in the job list (jobs/runner.ts). Each
 * step returns how many rows it deleted (the run's result). Add a step here for another table
 * (the outbox, campaign recipients, the audit log) rather than another job. Idempotent, so
 * several processes running it (a caught-up slot and the next one) do no harm.
 */
import { type Kysely, sql } from 'kysely'
import { pruneAuditLog } from '../src/community/audit-log.js'
import { pruneCampaignRecipients } from '../src/community/campaign-retention.js'
import { syncJoinWays } from '../src/community/join-ways.js'
import { pruneOutbox } from '../src/community/outbox.js'
import { settleNonAccountItems } from '../src/community/outbox-accounts.js'
import { databaseTokenStore } from '../src/community/token-store.js'
import { deleteInBatches } from '../src/db/delete-in-batches.js'
import type { Database } from '../src/db/schema.js'
import { accountClient } from '../src/wechat/api/account-client.js'
import { closeOrphanedRuns } from './runner.js'
import type { Job, JobContext } from './types.js'

/** Rows per DELETE: each statement stays short, whatever the backlog. */
const BATCH = 1000

/** One table's retention: deletes what has expired at `ctx.slot`, returns how many rows. */
export interface PruneStep {
  name: string
  prune(ctx: JobContext): Promise<number>
}

/**
 * Deletes job runs whose slot is before `before` and that are finished — or running with a lease
 * that passed (or none, from before leases): their process is long gone — in batches of
 * `batchSize`. Each job's newest scheduled run is kept whatever its age: catch-up starts from it.
 */
export async function pruneJobRuns(
  db: Kysely<Database>,
  o: { before: Date; now: Date; batchSize?: number },
): Promise<number> {
  const batch = o.batchSize ?? BATCH
  return deleteInBatches(batch, () =>
    db
      .deleteFrom('job_runs')
      .where(
        sql<boolean>`(job, slot) in (
          select r.job, r.slot from job_runs r
          where r.slot < ${o.before}
            and (r.status <> 'running' or r.lease_until is null or r.lease_until < ${o.now})
            and (r.trigger <> 'schedule' or r.slot < (
              select max(s.slot) from job_runs s where s.job = r.job and s.trigger = 'schedule'))
          limit ${batch})`,
      )
      .executeTakeFirst(),
  )
}

/** The prune steps, in order. */
export const pruneSteps: PruneStep[] = [
  {
    name: 'jobRuns',
    prune: ({ db, clock, config, slot }) =>
      pruneJobRuns(db, {
        before: new Date(slot.getTime() - config.jobs.runsRetentionDays * 86_400_000),
        now: clock.now(),
      }),
  },
  {
    // Before the outbox: the roll-up reads the campaign items' results from push_outbox.
    name: 'campaignRecipients',
    prune: async ({ db, config, slot }) => {
      const r = await pruneCampaignRecipients(db, {
        now: slot,
        retentionDays: config.campaigns.recipientsRetentionDays,
      })
      return r.recipients
    },
  },
  {
    // Not a deletion: waiting items no dispatcher will ever send (their appid is the mini
    // program's or WeCom's, src/community/outbox-accounts.ts) are settled `skipped`, so the
    // backlog figures do not count them for ever; the outbox step deletes them in their time.
    name: 'outboxNonAccount',
    prune: ({ db, slot }) => settleNonAccountItems(db, { now: slot }),
  },
  {
    name: 'outbox',
    prune: async ({ db, config, slot }) => {
      const r = await pruneOutbox(db, { ...config.outboxRetention, now: slot })
      return r.outbox + r.receipts + r.csWindows
    },
  },
  {
    // Refused calls after AUDIT_REFUSED_RETENTION_DAYS, operator actions after
    // AUDIT_LOG_RETENTION_DAYS: each kind on its own clock.
    name: 'auditLog',
    prune: async ({ db, config, slot }) => {
      const r = await pruneAuditLog(db, { ...config.auditRetention, now: slot, batchSize: BATCH })
      return r.actions + r.refused
    },
  },
  {
    // Not a deletion: join ways made for groups no longer in WECOM_JOIN_CHATS are pointed at the
    // current ones on WeCom, in place (their shared QRs keep working); counts those updated. An
    // empty list moves nothing (the 入群 entry is closed, not moved).
    name: 'joinWayGroups',
    prune: async ({ db, clock, logger, config, budget }) => {
      const contact = config.wecomContact
      if (!contact || contact.joinChats.length === 0) return 0
      const api = accountClient({
        tokenStore: databaseTokenStore(db, clock),
        appid: `wecom:${contact.corpId}`,
        secret: contact.secret,
        baseUrl: contact.apiBase,
        mode: 'wecom',
        clock,
        logger,
      })
      const r = await syncJoinWays(db, api, {
        chatIds: contact.joinChats,
        now: clock.now(),
        logger,
        more: () => budget?.left() !== false,
      })
      return r.updated
    },
  },
  {
    // Not a deletion: the runs of jobs gone from the list are closed (failed). A removed job's
    // newest scheduled run is kept, as every job's is (one row per removed job).
    name: 'orphanedRuns',
    prune: async (ctx) => {
      // The registry imports this file: read it when running, not when loading.
      const { jobs } = await import('./index.js')
      return closeOrphanedRuns(jobs, ctx, ctx.slot)
    },
  },
]

export const retentionJob: Job = {
  name: 'retention',
  cron: '47 4 * * *',
  /**
   * A step is the chunk: once the invocation's budget is spent (Workers) the run stops before the
   * next step and says `more`; the next tick resumes the slot, and the steps done find nothing
   * left to delete.
   */
  async run(ctx) {
    const deleted: Record<string, number> = {}
    for (const [i, step] of pruneSteps.entries()) {
      if (i > 0 && ctx.budget?.left() === false) return { ...deleted, more: true }
      deleted[step.name] = await step.prune(ctx)
    }
    return deleted
  },
}
