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
 *                                 → 400 { code: 'QUIET_HOURS', message, quietHours, reminder }
 *                                   when `time` falls in quiet hours: the schedule is refused
 *                                   (the reminder stays as it was), but an accept is still
 *                                   recorded — each call of wx.requestSubscribeMessage the
 *                                   member accepted is one send WeChat allows, and it cannot be
 *                                   asked for again without the member tapping again
 *   DELETE reminders              → { reminder } turned off (authorisations are kept)
 *
 * Writes run on the member the user is linked to now, under their link (shop/linked-member.ts).
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
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
import type { Database } from '../db/schema.js'
import { mpUser, withLinkedMember } from '../shop/linked-member.js'
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
  const { db, shop } = o
  const settings = o.reminders ?? DEFAULT_REMINDER_SETTINGS
  const app = new Hono<{ Variables: { memberId: number; openid: string } }>()
  const state = async (on: Kysely<Database>, memberId: number) => {
    const r = await reminderOf(on, memberId)
    return r ? { enabled: r.enabled, time: formatMinutes(r.minute) } : null
  }

  app.get('/', async (c) =>
    c.json({
      reminder: await state(db, c.var.memberId),
      templateId: settings.mpTemplateId ?? null,
    }),
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
    const source = { app: 'mp' as const, openid: c.var.openid }
    const done = await withLinkedMember(
      db,
      mpUser(shop.settings.mpAppid, c.var),
      async (trx, memberId) => {
        const member = await trx
          .selectFrom('members')
          .select('appid')
          .where('id', '=', memberId)
          .executeTakeFirstOrThrow()
        const common = { appid: member.appid, memberId, now, timeZone: o.timeZone }
        const set = input.time
          ? await setReminder(trx, { ...common, minute: parseReminderTime(input.time)!, settings })
          : undefined
        // A time in quiet hours refuses the schedule, not what the member did in WeChat: the send
        // they accepted is kept (the reminder left as it was); a refusal waits for a valid request.
        const quiet = set?.status === 'quiet' ? set.quietHours : null
        if (answer === 'accept')
          await recordAuthorisation(trx, {
            ...common,
            source,
            templateId,
            settings,
            turnOn: !quiet,
          })
        else if (!quiet) await revokeAuthorisation(trx, { memberId, app: 'mp', templateId, now })
        return { quiet, reminder: await state(trx, memberId) }
      },
    )
    if (done.quiet) {
      const from = formatMinutes(done.quiet.from)
      const to = formatMinutes(done.quiet.to)
      const kept = answer === 'accept' ? ' (the accepted subscription is kept)' : ''
      return c.json(
        {
          code: 'QUIET_HOURS',
          message: `${from}–${to} are quiet hours: pick another time${kept}`,
          quietHours: { from, to },
          reminder: done.reminder,
        },
        400,
      )
    }
    return c.json({ reminder: done.reminder })
  })

  app.delete('/', async (c) => {
    const now = o.clock.now()
    const reminder = await withLinkedMember(
      db,
      mpUser(shop.settings.mpAppid, c.var),
      async (trx, memberId) => {
        await cancelReminder(trx, memberId, now, settings.defaultMinute)
        return state(trx, memberId)
      },
    )
    return c.json({ reminder })
  })
  return app
}
