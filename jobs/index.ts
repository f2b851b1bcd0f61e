/** The job registry: every scheduled job, by name. Node schedules them with node-cron (schedule.ts);
 * Workers' `scheduled()` runs the ones due (runner.ts); both catch up missed slots (runner.ts). */
import { activityRemindersJob } from './activity-reminders.js'
import { alertsJob } from './alerts.js'
import { analyticsRollupJob } from './analytics-rollup.js'
import { backfillUnionidsJob } from './backfill-unionids.js'
import { campaignsJob } from './campaigns.js'
import { checkinRemindersJob } from './checkin-reminders.js'
import { databaseMaintenanceJob } from './database-maintenance.js'
import { expirePointsJob } from './expire-points.js'
import { journeysJob } from './journeys.js'
import { pruneInboundEventsJob } from './prune-inbound-events.js'
import { recomputeRecommendationsJob } from './recompute-recommendations.js'
import { recomputeSegmentsJob } from './recompute-segments.js'
import { reconcileBillsJob } from './reconcile-bills.js'
import { releasePointsJob } from './release-points.js'
import { retentionJob } from './retention.js'
import { shopMaintenanceJob } from './shop-maintenance.js'
import type { Job } from './types.js'

export type { Job, JobContext, JobDeps } from './types.js'

export const jobs: readonly Job[] = [
  pruneInboundEventsJob,
  retentionJob,
  shopMaintenanceJob,
  reconcileBillsJob,
  recomputeSegmentsJob,
  campaignsJob,
  activityRemindersJob,
  checkinRemindersJob,
  analyticsRollupJob,
  alertsJob,
  releasePointsJob,
  recomputeRecommendationsJob,
  expirePointsJob,
  journeysJob,
  databaseMaintenanceJob,
  backfillUnionidsJob,
]

/** Finds a job by name. */
export const findJob = (name: string) => jobs.find((j) => j.name === name)
