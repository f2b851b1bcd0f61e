/**
 * 社群 in the operator API (inside /admin/api, behind its bearer token), the same reads and actions
 * as the console's 社群 pages:
 *
 *   GET    accounts/:appid/groups        ?offset= groups seen, with member, follower and moderator counts
 *   GET    accounts/:appid/join-ways     ?offset= the inviters' WeCom join QRs (state = invite scene)
 *   GET    accounts/:appid/moderators    ?offset= the account's moderators the bot checks (its
 *                                        followers' `oa` rows, the deployment's WeCom and bridge
 *                                        rows), with their source
 *   POST   accounts/:appid/moderators    { channel, externalId, scope?, role? } — audited
 *   DELETE accounts/:appid/moderators    { channel, externalId, scope? } one added here — audited;
 *                                        another account's `oa` moderator is 404
 *   GET    accounts/:appid/audit-log     ?actor=&action=&target=&from=&to=&before=&format=csv
 *                                        newest first, 50 a page (`nextBefore`); CSV: the newest
 *                                        10 000 of the filtered view
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import { csvResponse } from '../routes/csv.js'
import { accountParam, digits, parseBody, parseQuery } from '../routes/validate.js'
import {
  addModerator,
  addModeratorInput,
  moderatorKey,
  removeModerator,
} from './actions/moderator-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import {
  auditFilterFields,
  auditLogExport,
  auditLogPage,
  auditRowsCsv,
  rangeForward,
} from './reads/audit-log.js'
import { listGroups, listJoinWays, listModerators } from './reads/community-reads.js'
import { apiActor } from './route-helpers.js'

const pageQuery = v.object({ offset: v.optional(digits(0, 1_000_000, 'must be a whole number')) })
const auditQuery = v.pipe(
  v.object({
    ...auditFilterFields,
    format: v.optional(v.picklist(['json', 'csv'] as const), 'json'),
  }),
  rangeForward(),
)

/** The community routes, to mount inside the operator API. */
export function communityAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const offsetOf = (c: Parameters<typeof parseQuery>[0]) =>
    Number(parseQuery(c, pageQuery).offset ?? 0)

  app.get('/accounts/:appid/groups', async (c) =>
    c.json(await listGroups(o.db, account(c), { offset: offsetOf(c) })),
  )

  app.get('/accounts/:appid/join-ways', async (c) =>
    c.json(await listJoinWays(o.db, account(c), { offset: offsetOf(c) })),
  )

  app.get('/accounts/:appid/moderators', async (c) =>
    c.json(await listModerators(o.db, account(c), { offset: offsetOf(c) })),
  )

  app.post('/accounts/:appid/moderators', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, addModeratorInput)
    const done = await addModerator(o, apiActor(c), { ...b, appid })
    if (done.status === 'unknown_member')
      throw new HTTPException(404, { message: `externalId: no follower ${b.externalId}` })
    if (done.status === 'exists') throw new HTTPException(409, { message: 'already a moderator' })
    return c.json(done.moderator, 201)
  })

  app.delete('/accounts/:appid/moderators', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, moderatorKey)
    const done = await removeModerator(o, apiActor(c), { ...b, appid })
    if (done.status === 'not_found') throw new HTTPException(404, { message: 'no such moderator' })
    if (done.status === 'managed')
      throw new HTTPException(409, {
        message: `source ${done.source}: change it where it comes from (MODERATORS or WeCom)`,
      })
    return c.json({ removed: true })
  })

  app.get('/accounts/:appid/audit-log', async (c) => {
    const appid = account(c)
    const { format, ...filter } = parseQuery(c, auditQuery)
    if (format === 'csv') {
      const rows = await auditLogExport(o.db, appid, filter, o.timeZone)
      return csvResponse(c, 'audit-log.csv', ...auditRowsCsv(rows, o.timeZone))
    }
    return c.json(await auditLogPage(o.db, appid, filter, o.timeZone))
  })
  return app
}
