/**
 * Campaigns in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   campaigns                       list
 *   POST  campaigns                       { name, audience: {segment?}, template | variants,
 *                                           schedule: {cron} | {at}, conversionDays? } → draft
 *   POST  campaigns/:id/schedule|pause|resume|finish   lifecycle: pause holds the campaign's
 *                                           queued pushes, resume releases them, finish cancels
 *                                           them and stops unfinished runs (campaign-lifecycle.ts)
 *   POST  campaigns/strategies            { templates: {new, at_risk, loyal}, cron? } the
 *                                           re-engagement drafts: onboarding, recall, early access
 *   GET   campaigns/:id/report            per variant: enqueued, sent, failed, delivered, clicked,
 *                                           converted, with the A/B z-test; the account's quota pause
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import type { Clock } from '../clock.js'
import { audit } from '../community/audit-log.js'
import { type CampaignMove, moveCampaign } from '../community/campaign-lifecycle.js'
import { campaignReport } from '../community/campaign-report.js'
import { MAX_CONVERSION_DAYS, quotaPausedUntil } from '../community/campaigns.js'
import { SEGMENTS } from '../community/segments.js'
import { cronMatches } from '../cron.js'
import type { Database } from '../db/schema.js'
import { accountParam, httpUrl, int, parseBody, timestamp } from '../routes/validate.js'
import { WechatValidationError } from '../wechat/api/errors.js'
import { validateTemplateMessage } from '../wechat/api/messages.js'

const ACTOR = 'operator'
const template = v.strictObject({
  template_id: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a template id')),
  data: v.record(
    v.pipe(v.string(), v.regex(/^[a-z_]+\d*$/)),
    v.strictObject({ value: v.string() }),
  ),
  url: v.optional(httpUrl()),
  miniprogram: v.optional(
    v.strictObject({ appid: v.string(), pagepath: v.pipe(v.string(), v.maxLength(256)) }),
  ),
})
const campaignBody = v.strictObject({
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(80)),
  audience: v.strictObject({
    segment: v.optional(v.picklist([...SEGMENTS], `one of ${SEGMENTS.join(', ')}`)),
    tag: v.optional(int(1)),
    group: v.optional(
      v.strictObject({
        channel: v.pipe(v.string(), v.regex(/^(wecom_aibot|wecom_customer|bridge:[\w-]{1,40})$/)),
        chatId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
      }),
    ),
  }),
  template: v.optional(template),
  variants: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          key: v.pipe(v.string(), v.regex(/^[A-Z]$/, 'a capital letter')),
          weight: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)),
          template,
        }),
      ),
      v.minLength(2, 'at least two variants (or use template)'),
      v.maxLength(5),
    ),
  ),
  schedule: v.union([
    v.strictObject({ cron: v.string() }),
    v.strictObject({ at: timestamp('an ISO 8601 time with an offset') }),
  ]),
  conversionDays: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_CONVERSION_DAYS)),
    7,
  ),
})

const STRATEGIES = [
  { segment: 'new', name: '新人引导（onboarding）' },
  { segment: 'at_risk', name: '沉默召回（recall offer）' },
  { segment: 'loyal', name: '忠诚用户抢先购（early access）' },
] as const
const strategiesBody = v.strictObject({
  templates: v.strictObject({ new: template, at_risk: template, loyal: template }),
  cron: v.optional(v.string(), '0 10 * * *'),
})

export function campaignAdminRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  timeZone: string
  appids: string[]
}): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const find = async (appid: string, id: string) => {
    const row = /^\d{1,15}$/.test(id)
      ? await o.db
          .selectFrom('campaigns')
          .selectAll()
          .where('appid', '=', appid)
          .where('id', '=', Number(id))
          .executeTakeFirst()
      : undefined
    if (!row) throw new HTTPException(404, { message: 'no such campaign' })
    return row
  }
  const json = (c: Awaited<ReturnType<typeof find>>) => ({
    id: c.id,
    name: c.name,
    status: c.status,
    audience: JSON.parse(c.audience),
    variants: JSON.parse(c.variants),
    schedule: c.schedule_cron ? { cron: c.schedule_cron } : { at: c.run_at },
    conversionDays: c.conversion_days,
  })

  app.get('/accounts/:appid/campaigns', async (c) => {
    const appid = account(c)
    const rows = await o.db
      .selectFrom('campaigns')
      .selectAll()
      .where('appid', '=', appid)
      .orderBy('id', 'desc')
      .execute()
    return c.json({ campaigns: rows.map(json) })
  })

  app.post('/accounts/:appid/campaigns', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, campaignBody)
    if ((b.template === undefined) === (b.variants === undefined))
      throw new HTTPException(400, { message: 'template: give template or variants (not both)' })
    const variants = b.variants ?? [{ key: 'A', weight: 100, template: b.template! }]
    if (new Set(variants.map((x) => x.key)).size !== variants.length)
      throw new HTTPException(400, { message: 'variants: keys must differ' })
    for (const [i, x] of variants.entries()) {
      try {
        validateTemplateMessage({ touser: 'o_check', ...x.template })
      } catch (error) {
        if (error instanceof WechatValidationError)
          throw new HTTPException(400, { message: `variants.${i}.template.${error.message}` })
        throw error
      }
    }
    if ('cron' in b.schedule) {
      try {
        cronMatches(b.schedule.cron, new Date(), o.timeZone)
      } catch {
        throw new HTTPException(400, {
          message: 'schedule.cron: five fields (min hour dom mon dow)',
        })
      }
    }
    const now = o.clock.now()
    const row = await o.db.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto('campaigns')
        .values({
          appid,
          name: b.name,
          status: 'draft',
          audience: JSON.stringify(b.audience),
          variants: JSON.stringify(variants),
          schedule_cron: 'cron' in b.schedule ? b.schedule.cron : null,
          run_at: 'at' in b.schedule ? new Date(b.schedule.at) : null,
          conversion_days: b.conversionDays,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
      await audit(trx, {
        appid,
        actor: ACTOR,
        action: 'campaign.create',
        target: String(created.id),
        details: b,
        now,
      })
      return created
    })
    return c.json(json(row), 201)
  })

  app.post('/accounts/:appid/campaigns/strategies', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, strategiesBody)
    try {
      cronMatches(b.cron, new Date(), o.timeZone)
    } catch {
      throw new HTTPException(400, { message: 'cron: five fields (min hour dom mon dow)' })
    }
    const now = o.clock.now()
    const created = await o.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('campaigns')
        .select('name')
        .where('appid', '=', appid)
        .where(
          'name',
          'in',
          STRATEGIES.map((s) => s.name),
        )
        .execute()
      const rows = []
      for (const s of STRATEGIES.filter((x) => !existing.some((e) => e.name === x.name))) {
        rows.push(
          await trx
            .insertInto('campaigns')
            .values({
              appid,
              name: s.name,
              status: 'draft',
              audience: JSON.stringify({ segment: s.segment }),
              variants: JSON.stringify([
                { key: 'A', weight: 100, template: b.templates[s.segment] },
              ]),
              schedule_cron: b.cron,
              created_at: now,
              updated_at: now,
            })
            .returningAll()
            .executeTakeFirstOrThrow(),
        )
      }
      if (rows.length)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'campaign.strategies',
          target: 'segments',
          details: b,
          now,
        })
      return rows
    })
    return c.json({ created: created.map(json) }, created.length ? 201 : 200)
  })

  app.post('/accounts/:appid/campaigns/:id/:action{schedule|pause|resume|finish}', async (c) => {
    const appid = account(c)
    const campaign = await find(appid, c.req.param('id'))
    const move = c.req.param('action') as CampaignMove
    const now = o.clock.now()
    const result = await o.db.transaction().execute(async (trx) => {
      const r = await moveCampaign(trx, { appid, id: campaign.id, move, now })
      if (r?.moved)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: `campaign.${move}`,
          target: String(campaign.id),
          details: { outbox: r.outbox, runsStopped: r.runsStopped },
          now,
        })
      return r
    })
    if (!result) throw new HTTPException(404, { message: 'no such campaign' })
    if (!result.moved)
      throw new HTTPException(409, { message: `cannot ${move} a ${result.status} campaign` })
    const moved = await find(appid, String(campaign.id))
    return c.json({ ...json(moved), outbox: result.outbox, runsStopped: result.runsStopped })
  })

  app.get('/accounts/:appid/campaigns/:id/report', async (c) => {
    const appid = account(c)
    const campaign = await find(appid, c.req.param('id'))
    return c.json({
      campaign: json(campaign),
      quotaPausedUntil: await quotaPausedUntil(o.db, appid, o.clock.now()),
      ...(await campaignReport(o.db, campaign.id)),
    })
  })
  return app
}
