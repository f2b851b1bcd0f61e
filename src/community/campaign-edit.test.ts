/**
 * Editing a campaign (`updateCampaign`, PATCH campaigns/:id) on every database: the edit applied
 * with the status kept and audited; bad input, unknown campaigns, started and finished ones
 * refused with nothing changed; and the race with the campaigns job — a run either is claimed
 * first and the edit refused, or waits for the edit and sends the edited campaign.
 */
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { holdTransaction, stillPending } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import {
  changeCampaign,
  createCampaign,
  updateCampaign,
} from '../admin/actions/campaign-actions.js'
import { type CreateCampaignInput, definitionOf } from '../admin/actions/campaign-input.js'
import { createApp } from '../app.js'
import { translator } from '../bot/i18n.js'
import { silentLogger } from '../logger.js'
import { editCampaign } from './campaign-edit.js'
import { pruneCampaignRecipients } from './campaign-retention.js'
import { type CampaignSettings, dispatchCampaigns } from './campaigns.js'

const TOKEN = 'campaign-edit-token'
const t = translator('zh-CN')
const settings: CampaignSettings = {
  timeZone: 'Asia/Shanghai',
  capHours: 0,
  capSlackMinutes: 0,
  quietHours: null,
  publicBaseUrl: 'https://quanzi.example',
}

forEachDatabase('campaign edits', (get, dbName) => {
  const appid = SAFE_ACCOUNT.appid
  const clock = { at: new Date('2026-12-01T02:00:00Z'), now: () => clock.at }
  const deps = () => ({ db: get().db, clock })
  const actor = { name: 'op1' }
  const app = () =>
    createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
    })
  const patch = async (id: number | string, body: unknown) => {
    const res = await app().request(`/admin/api/accounts/${appid}/campaigns/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }
  const input = (value: string, at = clock.now()): CreateCampaignInput => ({
    name: `推送 ${value}`,
    audience: {},
    template: { template_id: 'TPL_EDIT', data: { thing1: { value } } },
    schedule: { at: at.toISOString() },
    conversionDays: 7,
  })
  const row = (id: number) =>
    get().db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  const audits = (id: number) =>
    get()
      .db.selectFrom('audit_log')
      .select(['actor', 'action', 'details'])
      .where('action', '=', 'campaign.update')
      .where('target', '=', String(id))
      .execute()
  /** The thing1 values of the campaign's queued pushes. */
  const sentValues = async (id: number) => {
    const rows = await get()
      .db.selectFrom('push_outbox')
      .select('payload')
      .where('source', 'like', `campaign:${id}:%`)
      .execute()
    return rows.map((r) => JSON.parse(r.payload).data.thing1.value as string)
  }
  const dispatch = (o: Partial<Parameters<typeof dispatchCampaigns>[1]> = {}) =>
    dispatchCampaigns(get().db, { now: clock.now(), slot: clock.now(), settings, t, ...o })
  /** A scheduled one-shot campaign for everyone (the suite's 3 members), due now. */
  const scheduled = async (value: string) => {
    const k = await createCampaign(deps(), actor, { ...input(value), appid })
    await changeCampaign(deps(), actor, { appid, id: k.id, move: 'schedule' })
    return k.id
  }

  beforeAll(async () => {
    await get()
      .db.insertInto('members')
      .values(
        [1, 2, 3].map((i) => ({
          appid,
          openid: `o_edit_${dbName}_${i}`,
          subscribed: true,
          first_seen_at: new Date('2026-10-01T00:00:00Z'),
          last_active_at: new Date('2026-11-30T00:00:00Z'),
        })),
      )
      .execute()
  })

  it('edits a scheduled campaign: the definition is replaced, the status stays, audited before/after', async () => {
    const id = await scheduled('旧文案')
    const later = new Date('2026-12-02T02:00:00Z')
    const edited = {
      ...input('新文案', later),
      name: '改过的推送',
      audience: { segment: 'at_risk' as const },
      variants: [
        { key: 'A', weight: 70, template: input('甲').template! },
        { key: 'B', weight: 30, template: input('乙').template! },
      ],
      template: undefined,
      conversionDays: 3,
    }
    const r = await updateCampaign(deps(), actor, { ...edited, appid, id })
    expect(r).toMatchObject({
      status: 'updated',
      campaign: {
        id,
        name: '改过的推送',
        status: 'scheduled',
        audience: { segment: 'at_risk' },
        schedule: { at: later },
        conversionDays: 3,
      },
    })
    const k = await row(id)
    expect(k).toMatchObject({ status: 'scheduled', name: '改过的推送', conversion_days: 3 })
    expect(k.run_at?.toISOString()).toBe(later.toISOString())
    expect(JSON.parse(k.variants).map((x: { weight: number }) => x.weight)).toEqual([70, 30])
    const [entry, ...more] = await audits(id)
    expect(more).toEqual([])
    expect(entry).toMatchObject({ actor: 'op1', action: 'campaign.update' })
    const details = JSON.parse(entry!.details)
    expect(details.before).toMatchObject({ name: '推送 旧文案', audience: {} })
    expect(details.after).toMatchObject({ name: '改过的推送', conversionDays: 3 })
    await changeCampaign(deps(), actor, { appid, id, move: 'finish' }) // out of the later runs
  })

  it('PATCH: replaces a draft with the same checks as POST; bad input and unknown ids change nothing', async () => {
    const k = await createCampaign(deps(), actor, { ...input('草稿'), appid })
    const before = await row(k.id)
    const bad = async (body: unknown, message: RegExp) => {
      const r = await patch(k.id, body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(String(r.json.message)).toMatch(message)
    }
    const body = { ...input('接口改'), schedule: { cron: '0 10 * * 1' } }
    await bad({ ...body, name: '' }, /name/)
    await bad({ ...body, schedule: { cron: '0 10 * *' } }, /five fields/)
    await bad({ ...body, variants: [{ key: 'A', weight: 1, template: body.template }] }, /variant/)
    await bad(
      { ...body, template: { template_id: 'T', data: { first: { value: 'x' } } } },
      /first\/remark/,
    )
    await bad({ name: 'x' }, /audience|schedule/)
    expect(await row(k.id)).toEqual(before)
    expect((await patch(999_999, body)).status).toBe(404)
    expect((await patch('abc', body)).status).toBe(404)
    expect(await audits(k.id)).toEqual([])

    const ok = await patch(k.id, body)
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({
      id: k.id,
      status: 'draft',
      name: '推送 接口改',
      schedule: { cron: '0 10 * * 1' },
    })
    expect(await row(k.id)).toMatchObject({ schedule_cron: '0 10 * * 1', run_at: null })
    expect(await audits(k.id)).toHaveLength(1)
  })

  it('refuses once a run is enqueued — also in the middle of the run — and once finished', async () => {
    const id = await scheduled('已发送')
    let during: Awaited<ReturnType<typeof updateCampaign>>
    const run = await dispatch({
      batchSize: 1,
      onBatch: async () => {
        during ??= await updateCampaign(deps(), actor, { ...input('太迟'), appid, id })
      },
    })
    expect(run).toEqual({ runs: 1, enqueued: 3 })
    expect(during).toEqual({ status: 'started', campaignStatus: 'scheduled' })
    const after = await updateCampaign(deps(), actor, { ...input('太迟'), appid, id })
    // its pushes still queued, the one-shot is running (it ends as they settle)
    expect(after).toEqual({ status: 'started', campaignStatus: 'running' })
    const refused = await patch(id, input('太迟'))
    expect(refused.status).toBe(409)
    expect(String(refused.json.message)).toMatch(/started sending/)
    expect(await sentValues(id)).toEqual(['已发送', '已发送', '已发送'])
    expect((await row(id)).name).toBe('推送 已发送')

    const stopped = await createCampaign(deps(), actor, { ...input('停止'), appid })
    await changeCampaign(deps(), actor, { appid, id: stopped.id, move: 'finish' })
    expect(await updateCampaign(deps(), actor, { ...input('x'), appid, id: stopped.id })).toEqual({
      status: 'finished',
      campaignStatus: 'finished',
    })
    expect((await patch(stopped.id, input('x'))).status).toBe(409)
    expect(await audits(id)).toEqual([])
    expect(await audits(stopped.id)).toEqual([])
  })

  it('racing the campaigns job leaves one consistent result: the edit refused and the old sent, or the new sent', async () => {
    // On PostgreSQL the edits come through a second pool (another process); PGlite has one.
    const other = dbName === 'postgres' ? get().open() : get().db
    const outcomes: string[] = []
    for (let round = 0; round < 6; round++) {
      clock.at = new Date(Date.UTC(2026, 11, 10 + round, 2))
      const id = await scheduled(`旧${round}`)
      const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))
      const [edit, run] = await Promise.all([
        wait(round % 3).then(() =>
          updateCampaign({ db: other, clock }, actor, { ...input(`新${round}`), appid, id }),
        ),
        wait(2 - (round % 3)).then(() => dispatch()),
      ])
      const sent = await sentValues(id)
      expect(run.runs).toBe(1)
      expect(sent).toHaveLength(3)
      if (edit?.status === 'updated') expect(new Set(sent)).toEqual(new Set([`新${round}`]))
      else {
        expect(edit?.status).toBe('started')
        expect(new Set(sent)).toEqual(new Set([`旧${round}`]))
      }
      expect((await row(id)).name).toBe(
        edit?.status === 'updated' ? `推送 新${round}` : `推送 旧${round}`,
      )
      outcomes.push(edit!.status)
    }
    expect(outcomes.every((o) => o === 'updated' || o === 'started')).toBe(true)
  })

  it.skipIf(dbName !== 'postgres')(
    'a run claimed while an edit commits waits for it and sends the edited campaign, by its edited schedule',
    async () => {
      const other = get().open()
      const hold = async (id: number, edited: CreateCampaignInput) => {
        const held = await holdTransaction(other, (trx) =>
          editCampaign(trx, { appid, id, definition: definitionOf(edited), now: clock.now() }),
        )
        const dispatching = dispatch()
        expect(await stillPending(dispatching)).toBe(true) // the claim waits for the campaign row
        held.commit()
        expect((await held.done)?.edited).toBe(true)
        return dispatching
      }
      clock.at = new Date('2026-12-20T02:00:00Z')
      const id = await scheduled('旧')
      expect(await hold(id, input('新'))).toEqual({ runs: 1, enqueued: 3 })
      expect(await sentValues(id)).toEqual(['新', '新', '新'])

      // edited to a later time while the job had already found it due: no run now
      const moved = await scheduled('改期')
      expect(await hold(moved, input('改期', new Date('2026-12-21T02:00:00Z')))).toEqual({
        runs: 0,
        enqueued: 0,
      })
      expect(await sentValues(moved)).toEqual([])
      const runs = await get()
        .db.selectFrom('campaign_runs')
        .select('slot')
        .where('campaign_id', '=', moved)
        .execute()
      expect(runs).toEqual([])
    },
  )

  it('a cron campaign that ran for nobody stays started after its runs are pruned', async () => {
    const k = await createCampaign(deps(), actor, {
      ...input('无人'),
      audience: { segment: 'at_risk' },
      schedule: { cron: '0 10 * * *' },
      appid,
    })
    await changeCampaign(deps(), actor, { appid, id: k.id, move: 'schedule' })
    await dispatch()
    const runs = () =>
      get().db.selectFrom('campaign_runs').select('slot').where('campaign_id', '=', k.id).execute()
    expect(await runs()).toHaveLength(1)
    await pruneCampaignRecipients(get().db, {
      now: new Date(clock.now().getTime() + 400 * 86_400_000),
      retentionDays: 180,
    })
    // Its last run stays (marked pruned): nothing else would show it ever ran.
    expect(await runs()).toHaveLength(1)
    expect(await updateCampaign(deps(), actor, { ...input('太迟'), appid, id: k.id })).toEqual({
      status: 'started',
      campaignStatus: 'running',
    })
    await changeCampaign(deps(), actor, { appid, id: k.id, move: 'finish' })
  })
})
