/**
 * The member's check-in reminder in the mini program, under `/api/mp/reminders` (after the session
 * check):
 *
 *   GET    reminders              → { reminder: { enabled, time } | null, templateId }
 *   POST   reminders { result, time? }
 *                                 → { reminder } — `result` is what `wx.requestSubscribeMessage`
 *                                   returned (`{ <templateId>: 'accept' | 'reject' | 'ban' |
 *                                   'filter' }`); accepting the reminder template turns the
 *                                   reminder on and records one send; `time` (`HH:MM`) sets it
 *   DELETE reminders              → { reminder } turned off (authorisations are kept)
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import {
  cancelReminder,
  DEFAULT_REMINDER_SETTINGS,
  formatMinutes,
  parseReminderTime,
  recordAuthorisation,
  reminderOf,
  revokeAuthorisation,
  setReminder,
} from '../community/checkin-reminders.js'
import type { ShopRouteOptions } from './shop.js'
import { parseBody } from './validate.js'

const body = v.strictObject({
  result: v.pipe(
    v.record(
      v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'keys must be template ids')),
      v.picklist(['accept', 'reject', 'ban', 'filter'], 'must be accept, reject, ban or filter'),
    ),
    v.check((r) => Object.keys(r).length <= 20, 'at most 20 templates'),
  ),
  time: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM in community time, e.g. 20:30'),
    ),
  ),
})

export function reminderRoutes(
  o: ShopRouteOptions,
): Hono<{ Variables: { memberId: number; openid: string } }> {
  const { db } = o
  const settings = o.reminders ?? DEFAULT_REMINDER_SETTINGS
  const app = new Hono<{ Variables: { memberId: number; openid: string } }>()
  const state = async (memberId: number) => {
    const r = await reminderOf(db, memberId)
    return r ? { enabled: r.enabled, time: formatMinutes(r.minute) } : null
  }

  app.get('/', async (c) =>
    c.json({ reminder: await state(c.var.memberId), templateId: settings.mpTemplateId ?? null }),
  )

  app.post('/', async (c) => {
    const input = await parseBody(c, body)
    const templateId = settings.mpTemplateId
    if (!templateId)
      throw new HTTPException(404, {
        message: 'check-in reminders by subscribe message are not configured',
      })
    const answer = input.result[templateId]
    if (!answer)
      return c.json(
        {
          code: 'INVALID_INPUT',
          message: `result must include the check-in reminder template ${templateId}`,
        },
        400,
      )
    const now = o.clock.now()
    const member = await db
      .selectFrom('members')
      .select('appid')
      .where('id', '=', c.var.memberId)
      .executeTakeFirstOrThrow()
    const common = { appid: member.appid, memberId: c.var.memberId, now, timeZone: o.timeZone }
    if (input.time) {
      const set = await setReminder(db, {
        ...common,
        minute: parseReminderTime(input.time)!,
        settings,
      })
      if (set.status === 'quiet') {
        const { from, to } = set.quietHours
        return c.json(
          {
            code: 'QUIET_HOURS',
            message: `${formatMinutes(from)}–${formatMinutes(to)} are quiet hours: pick another time`,
          },
          400,
        )
      }
    }
    if (answer === 'accept')
      await recordAuthorisation(db, {
        ...common,
        source: { app: 'mp', openid: c.var.openid },
        templateId,
        settings,
      })
    else await revokeAuthorisation(db, { memberId: c.var.memberId, app: 'mp', templateId, now })
    return c.json({ reminder: await state(c.var.memberId) })
  })

  app.delete('/', async (c) => {
    await cancelReminder(db, c.var.memberId, o.clock.now())
    return c.json({ reminder: await state(c.var.memberId) })
  })
  return app
}
