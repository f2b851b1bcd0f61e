/**
 * Deletes settled inbound claims older than a week. WeChat retries within seconds, so a week is
 * only kept for support; claims still waiting for a follow-up are never deleted. Idempotent, so
 * several instances running it at once do no harm.
 */
import { pruneInboundEvents } from '../src/community/inbound-events.js'
import type { Job } from './types.js'

const KEEP_DAYS = 7

export const pruneInboundEventsJob: Job = {
  name: 'prune-inbound-events',
  cron: '17 4 * * *',
  async run({ db, clock }) {
    const before = new Date(clock.now().getTime() - KEEP_DAYS * 86_400_000)
    return { deleted: await pruneInboundEvents(db, before) }
  },
}
