/**
 * The operator API's campaigns and time: a one-shot campaign whose send time has passed on the
 * server's clock is refused when made or edited (400 naming `schedule.at`), and a draft that waited
 * past its time cannot be scheduled (409) — the campaigns job would otherwise send it at once.
 */
import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { manualClock } from '../../test/console-kit.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { silentLogger } from '../logger.js'

const TOKEN = 'campaign-operator-token-0123'
const base = `/admin/api/accounts/${SAFE_ACCOUNT.appid}`

forEachDatabase('operator API: one-shot campaign times', (get) => {
  // 10:00:30 on 20 Nov 2026 in Shanghai
  const clock = manualClock(new Date('2026-11-20T02:00:30Z'))
  const app = () =>
    createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
    })
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app().request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, json: await res.json() }
  }
  const campaign = (name: string, at: string) => ({
    name,
    audience: {},
    template: { template_id: 'TPL_NOTICE', data: { thing1: { value: '周末活动' } } },
    schedule: { at },
  })
  /** The campaign's 10:30 run, claimed (`enqueuing`) or done (`enqueued`): it started sending. */
  const startRun = (id: number, status: 'enqueuing' | 'enqueued') =>
    get()
      .db.insertInto('campaign_runs')
      .values({
        campaign_id: id,
        slot: new Date('2026-11-20T02:30:00Z'),
        status,
        lease_until: clock.now(),
        created_at: clock.now(),
        finished_at: status === 'enqueued' ? clock.now() : null,
        pruned_at: null,
      })
      .execute()
  const stored = () =>
    get().db.selectFrom('campaigns').select(['name', 'status', 'run_at']).orderBy('id').execute()

  it('refuses a send time that has passed when a campaign is made or edited, changing nothing', async () => {
    for (const at of ['2026-11-16T10:00:00+08:00', '2026-11-20T01:59:59Z']) {
      const made = await call('POST', '/campaigns', campaign('past', at))
      expect([made.status, made.json.message], at).toEqual([
        400,
        expect.stringMatching(/^schedule\.at: the send time has passed/),
      ])
    }
    expect(await stored()).toEqual([])
    // the current minute is "now", and later is fine
    expect(
      (await call('POST', '/campaigns', campaign('now', '2026-11-20T10:00:00+08:00'))).status,
    ).toBe(201)
    const later = await call('POST', '/campaigns', campaign('later', '2026-11-21T10:00:00+08:00'))
    expect(later.status).toBe(201)
    const edited = await call(
      'PATCH',
      `/campaigns/${later.json.id}`,
      campaign('later, moved back', '2026-11-16T10:00:00+08:00'),
    )
    expect([edited.status, edited.json.message]).toEqual([
      400,
      expect.stringMatching(/^schedule\.at: the send time has passed/),
    ])
    expect((await stored()).map((c) => c.name)).toEqual(['now', 'later'])
    expect((await stored())[1]!.run_at?.toISOString()).toBe('2026-11-21T02:00:00.000Z')
    // the audit log holds what was made, nothing refused
    const audits = await get()
      .db.selectFrom('audit_log')
      .select('action')
      .where('action', 'like', 'campaign.%')
      .execute()
    expect(audits.map((a) => a.action)).toEqual(['campaign.create', 'campaign.create'])
  })

  it('refuses to schedule a draft whose send time passed while it waited', async () => {
    const made = await call('POST', '/campaigns', campaign('waits', '2026-11-20T10:30:00+08:00'))
    expect(made.status).toBe(201)
    clock.advance(3600_000) // 11:00:30: its 10:30 has passed
    try {
      const refused = await call('POST', `/campaigns/${made.json.id}/schedule`)
      expect([refused.status, refused.json.message]).toEqual([
        409,
        expect.stringMatching(/^schedule\.at: the send time has passed.*edit its time first/),
      ])
      const row = await get()
        .db.selectFrom('campaigns')
        .select('status')
        .where('id', '=', made.json.id)
        .executeTakeFirstOrThrow()
      expect(row.status).toBe('draft')
      // edited to a time ahead, it schedules
      const moved = await call(
        'PATCH',
        `/campaigns/${made.json.id}`,
        campaign('waits', '2026-11-20T11:30:00+08:00'),
      )
      expect(moved.status).toBe(200)
      expect((await call('POST', `/campaigns/${made.json.id}/schedule`)).status).toBe(200)
    } finally {
      clock.advance(-3600_000)
    }
  })

  it('refuses to resume a one-shot paused before its first run once its time has passed', async () => {
    const made = await call('POST', '/campaigns', campaign('paused', '2026-11-20T10:30:00+08:00'))
    expect((await call('POST', `/campaigns/${made.json.id}/schedule`)).status).toBe(200)
    expect((await call('POST', `/campaigns/${made.json.id}/pause`)).status).toBe(200)
    clock.advance(3600_000) // 11:00:30: its 10:30 has passed while it was paused
    try {
      const refused = await call('POST', `/campaigns/${made.json.id}/resume`)
      expect([refused.status, refused.json.message]).toEqual([
        409,
        expect.stringMatching(/^schedule\.at: the send time has passed.*edit its time first/),
      ])
      const row = await get()
        .db.selectFrom('campaigns')
        .select('status')
        .where('id', '=', made.json.id)
        .executeTakeFirstOrThrow()
      expect(row.status).toBe('paused')
      // one paused after its run started resumes (its run goes on)
      await startRun(made.json.id, 'enqueuing')
      expect((await call('POST', `/campaigns/${made.json.id}/resume`)).status).toBe(200)
    } finally {
      clock.advance(-3600_000)
    }
  })

  it('tells an edit of a campaign that started sending that it started, not that its time passed', async () => {
    const made = await call('POST', '/campaigns', campaign('ran', '2026-11-20T10:30:00+08:00'))
    expect((await call('POST', `/campaigns/${made.json.id}/schedule`)).status).toBe(200)
    await startRun(made.json.id, 'enqueued')
    clock.advance(3600_000)
    try {
      const edited = await call(
        'PATCH',
        `/campaigns/${made.json.id}`,
        campaign('ran, renamed', '2026-11-20T10:30:00+08:00'),
      )
      expect([edited.status, edited.json.message]).toEqual([
        409,
        expect.stringMatching(/has started sending/),
      ])
    } finally {
      clock.advance(-3600_000)
    }
  })
})
