/**
 * How many members a campaign audience holds, and how many of them a template push reaches now
 * (not opted out of marketing, following, not blocking template messages): the console's
 * estimate before a campaign is made. Counted with the run's own audience query and
 * reachability check, so the estimate is what a run would see.
 */
import type { Kysely } from 'kysely'
import { type Audience, audienceMembers } from '../../community/campaigns.js'
import { loadReachability } from '../../community/reachability.js'
import type { Database } from '../../db/schema.js'

/** An audience's size and who of it a template push reaches now. */
export interface AudienceEstimate {
  size: number
  reachable: number
  optedOut: number
  unreachable: number
}

/** Members per page while counting (keyset pages, like a run's batches). */
const PAGE = 2000

/** Counts `audience` of `appid` at `now`. */
export async function estimateAudience(
  db: Kysely<Database>,
  appid: string,
  audience: Audience,
  now: Date,
): Promise<AudienceEstimate> {
  const out: AudienceEstimate = { size: 0, reachable: 0, optedOut: 0, unreachable: 0 }
  let cursor = 0
  for (;;) {
    const page = await audienceMembers(db, appid, audience)
      .select(['m.id', 'm.openid', 'm.marketing_opt_out'])
      .where('m.id', '>', cursor)
      .orderBy('m.id')
      .limit(PAGE)
      .execute()
    if (page.length === 0) return out
    const reach = await loadReachability(
      db,
      appid,
      page.map((m) => m.openid),
      now,
    )
    for (const m of page) {
      out.size++
      if (m.marketing_opt_out) out.optedOut++
      else if (reach(m.openid, 'template')) out.unreachable++
      else out.reachable++
    }
    cursor = page[page.length - 1]!.id
  }
}
