import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { inviteTree as inviterTree, longestInviteChains } from '../admin/reads/invite-chains.js'
import { inviteTree as memberInviteTree } from '../admin/reads/invite-tree.js'
import { liveToday } from '../analytics/series.js'
import { translator } from '../bot/i18n.js'
import { systemClock } from '../clock.js'
import type { Member } from '../db/schema.js'
import { createLogger, silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { qrImageUrl } from '../wechat/api/qrcode.js'
import { checkIn } from './checkins.js'
import { inviteReport } from './invite-report.js'
import {
  attributeInvite,
  DEFAULT_INVITE_SETTINGS,
  type InviteSettings,
  inviteCode,
  inviteQr,
  inviteScene,
  parseInviteScene,
  qualifyInvite,
  recordShare,
} from './invites.js'
import { changePoints } from './points-ledger.js'
import { databaseTokenStore } from './token-store.js'

const TZ = 'Asia/Shanghai'
const t = translator('zh-CN')
const SECRET = 'invite-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

it('parses invite scenes and refuses others', () => {
  expect(parseInviteScene(inviteScene('AB23CD45'))).toEqual({ code: 'AB23CD45', campaign: '' })
  expect(parseInviteScene(inviteScene('AB23CD45', 'spring-2026'))).toEqual({
    code: 'AB23CD45',
    campaign: 'spring-2026',
  })
  for (const scene of [null, '', 'inv_', 'inv_ab23cd45', 'inv_AB23CD4', 'promo', 'inv_AB23CD45_'])
    expect(parseInviteScene(scene)).toBeNull()
  expect(() => inviteScene('AB23CD45', 'has space')).toThrow(/campaign/)
})

forEachDatabase('invites and referral rewards', (get, dbName) => {
  let n = 0
  const now = new Date('2026-11-24T02:00:00Z')
  const appid = () => `wx${dbName === 'pglite' ? 'c' : 'd'}${String(++n).padStart(15, '0')}`
  const member = (app: string, openid: string): Promise<Member> =>
    get()
      .db.insertInto('members')
      .values({ appid: app, openid, subscribed: true, first_seen_at: now, last_active_at: now })
      .returningAll()
      .executeTakeFirstOrThrow()
  const context = (settings: InviteSettings = DEFAULT_INVITE_SETTINGS) => ({
    now,
    timeZone: TZ,
    settings,
    t,
  })
  const invite = async (inviter: Member, invitee: Member, settings?: InviteSettings) =>
    attributeInvite(get().db, {
      invitee,
      scene: inviteScene(await inviteCode(get().db, inviter, now)),
      isNew: true,
      source: 'oa_qr',
      ...context(settings),
    })
  const ledger = (memberId: number) =>
    get()
      .db.selectFrom('points_ledger')
      .select(['rule', 'delta'])
      .where('member_id', '=', memberId)
      .orderBy('id')
      .execute()
  const firstCheckin = (m: Member) =>
    checkIn(get().db, {
      appid: m.appid,
      memberId: m.id,
      now,
      timeZone: TZ,
      settings: { streakBonuses: {} },
      invites: { settings: DEFAULT_INVITE_SETTINGS, t },
    })

  it('pays a chain of invites exactly five levels up, once, on the first check-in', async () => {
    const app = appid()
    const chain: Member[] = []
    for (let i = 0; i < 7; i++) chain.push(await member(app, `o_chain_${i}`))
    for (let i = 1; i < 7; i++)
      expect((await invite(chain[i - 1]!, chain[i]!)).status).toBe('attributed')
    // nothing is paid before the invitee checks in (the default: rewards on first check-in)
    expect(await ledger(chain[5]!.id)).toEqual([])
    await firstCheckin(chain[6]!)
    await firstCheckin(chain[6]!) // the same day again: nothing more
    const paid = await Promise.all(chain.map((m) => ledger(m.id)))
    expect(paid[5]).toEqual([{ rule: 'friend_invite', delta: 50 }])
    expect(paid[4]).toEqual([{ rule: 'invite_chain', delta: 30 }])
    expect(paid[3]).toEqual([{ rule: 'invite_chain', delta: 20 }])
    expect(paid[2]).toEqual([{ rule: 'invite_chain', delta: 10 }])
    expect(paid[1]).toEqual([{ rule: 'invite_chain', delta: 5 }])
    expect(paid[0]).toEqual([]) // a sixth level is not paid
    expect(paid[6]).toEqual([{ rule: 'checkin', delta: 5 }])
    // qualifying again changes nothing
    expect(await qualifyInvite(get().db, chain[6]!.id, context())).toBeNull()
    // each inviter is told through the outbox, once
    const notices = await get()
      .db.selectFrom('push_outbox')
      .select(['openid', 'source'])
      .where('appid', '=', app)
      .orderBy('openid')
      .execute()
    expect(notices.filter((x) => x.source.startsWith('invite:')).map((x) => x.openid)).toEqual([
      'o_chain_1',
      'o_chain_2',
      'o_chain_3',
      'o_chain_4',
      'o_chain_5',
    ])
    // and the direct inviter earned 初次邀请 (badges.ts), told once too
    expect(notices.filter((x) => !x.source.startsWith('invite:'))).toEqual([
      { openid: 'o_chain_5', source: 'badge:first_invite' },
    ])
  })

  it('answers a check-in whose invite qualification failed, and qualifies it at the next one', async () => {
    const app = appid()
    const inviter = await member(app, 'o_down_inviter')
    const invitee = await member(app, 'o_down_invitee')
    expect((await invite(inviter, invitee)).status).toBe('attributed')
    const inTransaction = await member(app, 'o_down_in_transaction')
    expect((await invite(inviter, inTransaction)).status).toBe('attributed')
    const logged: Record<string, unknown>[] = []
    const logger = createLogger({ write: (line) => logged.push(JSON.parse(line)) })
    const checkin = (day: Date, db = get().db, memberId = invitee.id) =>
      checkIn(db, {
        appid: app,
        memberId,
        now: day,
        timeZone: TZ,
        settings: { streakBonuses: {} },
        invites: { settings: DEFAULT_INVITE_SETTINGS, t },
        logger,
      })
    // The qualification's own transaction fails after the check-in statement committed.
    try {
      await sql`create function qualification_down() returns trigger language plpgsql as $$
      begin raise exception 'qualification down'; end $$`.execute(get().db)
      await sql`create trigger qualification_down before update on invites for each row
      when (new.appid = ${sql.lit(app)} and new.status = 'qualified')
      execute function qualification_down()`.execute(get().db)
      const first = await checkin(now)
      expect(first).toMatchObject({ status: 'checked_in', streak: 1, points: 5 })
      expect(logged).toMatchObject([
        { level: 'error', code: 'CHECKIN_FOLLOW_UP_FAILED', followUp: 'invite' },
      ])
      expect(await ledger(invitee.id)).toEqual([{ rule: 'checkin', delta: 5 }])
      expect(await ledger(inviter.id)).toEqual([])
      // Inside a caller's transaction nothing has committed: the failure is thrown, nothing kept.
      await expect(
        get()
          .db.transaction()
          .execute((trx) => checkin(now, trx, inTransaction.id)),
      ).rejects.toThrow(/qualification down/)
      expect(await ledger(inTransaction.id)).toEqual([])
      expect(logged).toHaveLength(1)
    } finally {
      await sql`drop trigger if exists qualification_down on invites`.execute(get().db)
      await sql`drop function if exists qualification_down()`.execute(get().db)
    }
    // The invite stayed pending: the next day's check-in qualifies it and pays the inviter.
    const next = await checkin(new Date(now.getTime() + 86_400_000))
    expect(next).toMatchObject({ status: 'checked_in', streak: 2 })
    expect(await ledger(inviter.id)).toEqual([{ rule: 'friend_invite', delta: 50 }])
    expect(logged).toHaveLength(1)
  })

  it('lets one of two racing inviters win an invitee', async () => {
    const app = appid()
    const [a, b, friend] = [
      await member(app, 'o_race_a'),
      await member(app, 'o_race_b'),
      await member(app, 'o_race_friend'),
    ]
    const results = await Promise.all([invite(a, friend), invite(b, friend), invite(a, friend)])
    expect(results.filter((r) => r.status === 'attributed')).toHaveLength(1)
    expect(results.filter((r) => r.status === 'already_invited')).toHaveLength(2)
    const rows = await get()
      .db.selectFrom('invites')
      .select('inviter_member_id')
      .where('invitee_member_id', '=', friend.id)
      .execute()
    expect(rows).toHaveLength(1)
  })

  it('refuses self-invites, unknown codes, non-invite scenes and people who are not new', async () => {
    const app = appid()
    const me = await member(app, 'o_self')
    const code = await inviteCode(get().db, me, now)
    expect(await inviteCode(get().db, me, now)).toBe(code) // stable
    const base = { invitee: me, isNew: true, source: 'oa_qr' as const, ...context() }
    expect((await attributeInvite(get().db, { ...base, scene: inviteScene(code) })).status).toBe(
      'self',
    )
    expect(
      (await attributeInvite(get().db, { ...base, scene: inviteScene('ZZZZZZZZ') })).status,
    ).toBe('unknown_code')
    expect((await attributeInvite(get().db, { ...base, scene: 'poster' })).status).toBe(
      'not_invite',
    )
    const other = await member(app, 'o_self_other')
    expect(
      (
        await attributeInvite(get().db, {
          ...base,
          invitee: other,
          isNew: false,
          scene: inviteScene(code),
        })
      ).status,
    ).toBe('not_new')
    // a bare code (a WeCom join state) works like a scene
    expect(
      (
        await attributeInvite(get().db, {
          ...base,
          invitee: other,
          scene: code,
          source: 'group_join',
        })
      ).status,
    ).toBe('attributed')
    expect(
      await get().db.selectFrom('invites').select('id').where('appid', '=', app).execute(),
    ).toHaveLength(1)
  })

  it('pays on follow when configured, and level 1 only within the friend_invite cap', async () => {
    const app = appid()
    const onFollow: InviteSettings = { ...DEFAULT_INVITE_SETTINGS, rewardOn: 'follow' }
    const inviter = await member(app, 'o_cap_inviter')
    for (let i = 0; i < 11; i++) {
      const r = await invite(inviter, await member(app, `o_cap_${i}`), onFollow)
      expect(r.status).toBe('attributed')
    }
    const entries = await ledger(inviter.id)
    expect(entries).toHaveLength(10) // friend_invite: 10 ever
    expect(entries.every((e) => e.rule === 'friend_invite' && e.delta === 50)).toBe(true)
  })

  it('drops, at the first check-in, the invite of a follower whose unionid shows them known before', async () => {
    const app = appid()
    const inviter = await member(app, 'o_late_inviter')
    // followed through the code while their unionid was unknown (user/info failed): attributed
    const known = await member(app, 'o_late_known')
    const fresh = await member(app, 'o_late_fresh')
    expect((await invite(inviter, known)).status).toBe('attributed')
    expect((await invite(inviter, fresh)).status).toBe('attributed')
    // then learnt (the nightly backfill): `known` is a WeCom contact recorded a month before the
    // follow; `fresh` opened the mini program only after it
    const at = (days: number) => new Date(now.getTime() + days * 86_400_000)
    await get()
      .db.insertInto('members')
      .values([
        { appid: `wecom:${app}`, openid: 'wm_late', unionid: `${app}-k`, first_seen_at: at(-30) },
        { appid: `mp${app}`, openid: 'mp_late', unionid: `${app}-f`, first_seen_at: at(1) },
      ])
      .execute()
    for (const [m, unionid] of [
      [known, `${app}-k`],
      [fresh, `${app}-f`],
    ] as const)
      await get().db.updateTable('members').set({ unionid }).where('id', '=', m.id).execute()
    await firstCheckin(known)
    expect(await ledger(inviter.id)).toEqual([])
    await firstCheckin(fresh)
    expect(await ledger(inviter.id)).toEqual([{ rule: 'friend_invite', delta: 50 }])
    const left = await get()
      .db.selectFrom('invites')
      .select(['invitee_member_id', 'status', 'drop_reason', 'dropped_at'])
      .where('appid', '=', app)
      .orderBy('id')
      .execute()
    expect(left).toEqual([
      {
        invitee_member_id: known.id,
        status: 'dropped',
        drop_reason: 'known_before',
        dropped_at: now,
      },
      { invitee_member_id: fresh.id, status: 'qualified', drop_reason: null, dropped_at: null },
    ])
  })

  it('keeps a dropped invite as dropped, never pending or qualified, paying no one up its chain', async () => {
    const app = appid()
    const [top, known, next] = (await Promise.all(
      ['top', 'known', 'next'].map((x) => member(app, `o_drop_${x}`)),
    )) as [Member, Member, Member]
    // `known` follows through top's code (attributed), then invites `next`
    expect((await invite(top, known)).status).toBe('attributed')
    expect((await invite(known, next)).status).toBe('attributed')
    // `known` turns out to be a WeCom contact of a month before: dropped at the first check-in
    await get()
      .db.insertInto('members')
      .values({
        appid: `wecom:${app}`,
        openid: 'wm_drop',
        unionid: `${app}-d`,
        first_seen_at: new Date(now.getTime() - 30 * 86_400_000),
      })
      .execute()
    await get()
      .db.updateTable('members')
      .set({ unionid: `${app}-d` })
      .where('id', '=', known.id)
      .execute()
    const first = await firstCheckin(known)
    expect(first.status).toBe('checked_in')
    const row = () =>
      get()
        .db.selectFrom('invites')
        .select(['status', 'drop_reason', 'dropped_at', 'qualified_at'])
        .where('invitee_member_id', '=', known.id)
        .executeTakeFirst()
    expect(await row()).toEqual({
      status: 'dropped',
      drop_reason: 'known_before',
      dropped_at: now,
      qualified_at: null,
    })
    // not pending: qualifying again (a later check-in, a retry) finds nothing and changes nothing
    expect(await qualifyInvite(get().db, known.id, context())).toBeNull()
    expect((await row())?.status).toBe('dropped')
    // `next` qualifies: `known` is paid level 1, but the dropped invite links no one above it
    const paid = await qualifyInvite(get().db, next.id, context())
    expect(paid?.map((p) => [p.level, p.memberId])).toEqual([[1, known.id]])
    expect(await ledger(top.id)).toEqual([])
    // no badge for `top`; not a conversion in the report (still an invite attributed that day)
    expect(
      await get()
        .db.selectFrom('member_badges')
        .select('badge_key')
        .where('member_id', '=', top.id)
        .execute(),
    ).toEqual([])
    const report = await inviteReport(get().db, {
      appid: app,
      from: '2026-11-24',
      to: '2026-11-24',
      timeZone: TZ,
      now,
      live: liveToday(get().db, 0),
    })
    expect(report.topInviters).toEqual([
      { openid: 'o_drop_known', invites: 1, conversions: 1 },
      { openid: 'o_drop_top', invites: 1, conversions: 0 },
    ])
    // nor a link of the invite tree: `known` has no inviter, `top` invited no one
    expect((await memberInviteTree(get().db, app, known.id)).up).toEqual([])
    expect((await memberInviteTree(get().db, app, top.id)).down).toEqual([])
    expect(await inviterTree(get().db, { appid: app, openid: 'o_drop_top' })).toMatchObject({
      members: 0,
    })
    expect(
      (await longestInviteChains(get().db, { appid: app })).map((c) => [c.openid, c.depth]),
    ).toEqual([['o_drop_known', 1]])
  })

  it('pays no chain above an invite whose level 1 hit the friend_invite cap, under concurrency', async () => {
    const app = appid()
    const grand = await member(app, 'o_farm_grand')
    const farmer = await member(app, 'o_farm_farmer')
    expect((await invite(grand, farmer)).status).toBe('attributed')
    const invitees: Member[] = []
    for (let i = 0; i < 14; i++) {
      const m = await member(app, `o_farm_${i}`)
      expect((await invite(farmer, m)).status).toBe('attributed')
      invitees.push(m)
    }
    // the 14 first check-ins at once, through two pools on PostgreSQL
    const other = dbName === 'postgres' ? get().open() : get().db
    try {
      await Promise.all(
        invitees.map((m, i) =>
          checkIn(i % 2 ? other : get().db, {
            appid: app,
            memberId: m.id,
            now,
            timeZone: TZ,
            settings: { streakBonuses: {} },
            invites: { settings: DEFAULT_INVITE_SETTINGS, t },
          }),
        ),
      )
    } finally {
      if (other !== get().db) await other.destroy()
    }
    const sum = (rows: { delta: number }[]) => rows.reduce((n, r) => n + r.delta, 0)
    expect(sum(await ledger(farmer.id))).toBe(500) // friend_invite: 10 ever
    // levels 2… follow level 1: 10 paid invites, 30 each — not 14 × 30
    const chain = await ledger(grand.id)
    expect(chain.every((e) => e.rule === 'invite_chain' && e.delta === 30)).toBe(true)
    expect(sum(chain)).toBe(300)
    expect(
      await get()
        .db.selectFrom('invites')
        .select('id')
        .where('inviter_member_id', '=', farmer.id)
        .where('status', '=', 'qualified')
        .execute(),
    ).toHaveLength(14)
  })

  it('issues an invite QR once per period, under concurrency, and re-issues it before expiry', async () => {
    const app = appid()
    const api = accountClient({
      tokenStore: databaseTokenStore(get().db, systemClock),
      appid: app,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock: { now: () => new Date() },
      logger: silentLogger,
    })
    const me = await member(app, 'o_qr')
    const before = wx.calls('qrcode.create')
    const ask = (at: Date) =>
      inviteQr(get().db, api, {
        member: me,
        now: at,
        settings: DEFAULT_INVITE_SETTINGS,
      })
    const first = await Promise.all([ask(now), ask(now), ask(now), ask(now), ask(now)])
    expect(wx.calls('qrcode.create') - before).toBe(1)
    expect(first.filter((q) => q.issued)).toHaveLength(1)
    expect(new Set(first.map((q) => q.ticket)).size).toBe(1)
    const q = first[0]!
    expect(q.expiresAt.getTime() - now.getTime()).toBe(30 * 86_400_000)
    // the image is served without auth, and the code scans to the member's invite scene
    const image = await fetch(qrImageUrl(wx.url, q.ticket))
    expect(image.status).toBe(200)
    expect(image.headers.get('content-type')).toBe('image/svg+xml')
    expect(wx.qrScene(q.ticket)).toBe(inviteScene(q.code))
    // 22 days later (8 left): still cached; 23.5 days later (less than a week left): re-issued,
    // so a code handed out lives a week at least
    expect((await ask(new Date(now.getTime() + 22 * 86_400_000))).issued).toBe(false)
    const laterAt = new Date(now.getTime() + 23.5 * 86_400_000)
    const later = await ask(laterAt)
    expect(later.issued).toBe(true)
    expect(later.expiresAt.getTime() - laterAt.getTime()).toBeGreaterThanOrEqual(7 * 86_400_000)
    expect(later.ticket).not.toBe(q.ticket)
    expect(later.code).toBe(q.code)
    expect(wx.calls('qrcode.create') - before).toBe(2)
    // a one-day code is kept for half its life, not re-issued on every request
    const daily = { ...DEFAULT_INVITE_SETTINGS, qrDays: 1 }
    const other = await member(app, 'o_qr_daily')
    const askDaily = (at: Date) =>
      inviteQr(get().db, api, { member: other, now: at, settings: daily })
    expect((await askDaily(now)).issued).toBe(true)
    expect((await askDaily(new Date(now.getTime() + 3600_000))).issued).toBe(false)
    expect((await askDaily(new Date(now.getTime() + 13 * 3600_000))).issued).toBe(true)
  })

  it('lets one change win an idempotency key even when two members race for it', async () => {
    const app = appid()
    const [a, b] = [await member(app, 'o_key_a'), await member(app, 'o_key_b')]
    const change = (m: Member) =>
      changePoints(
        get().db,
        {
          appid: app,
          memberId: m.id,
          rule: 'grant',
          idempotencyKey: 'shared-key',
          now,
          timeZone: TZ,
        },
        5,
      )
    const outcomes = await Promise.all([change(a), change(b), change(a), change(b)])
    expect(outcomes.filter((x) => x.status === 'applied')).toHaveLength(1)
    expect(outcomes.filter((x) => x.status === 'duplicate')).toHaveLength(3)
  })

  it('reports sharers, invites, conversions, share rate and K per campaign, with top inviters', async () => {
    const app = appid()
    const [a, b, c, d, e] = (await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((x) => member(app, `o_report_${x}`)),
    )) as [Member, Member, Member, Member, Member]
    await get()
      .db.insertInto('members')
      .values({
        appid: app,
        openid: 'o_report_gone',
        first_seen_at: new Date('2026-01-01T00:00:00Z'),
        last_active_at: new Date('2026-01-01T00:00:00Z'),
      })
      .execute()
    for (const [m, campaign] of [
      [a, ''],
      [a, ''], // the same day twice: one share
      [e, ''],
      [a, 'spring'],
    ] as const)
      await recordShare(get().db, { member: m, campaign, now, timeZone: TZ })
    await invite(a, b)
    const codeA = await inviteCode(get().db, a, now)
    await attributeInvite(get().db, {
      invitee: c,
      scene: inviteScene(codeA, 'spring'),
      isNew: true,
      source: 'oa_qr',
      ...context(),
    })
    await invite(e, d)
    await firstCheckin(b)
    await firstCheckin(d)

    // the five active today (11-24, read live): Σ DAU of the period is 5
    await get()
      .db.insertInto('member_days')
      .values(
        [a, b, c, d, e].map((m) => ({ appid: app, day: '2026-11-24', member_id: m.id, kinds: 1 })),
      )
      .execute()
    const live = liveToday(get().db, 0)
    const report = await inviteReport(get().db, {
      appid: app,
      from: '2026-11-18',
      to: '2026-11-24',
      timeZone: TZ,
      now,
      live,
    })
    expect(report).toEqual({
      from: '2026-11-18',
      to: '2026-11-24',
      activeMemberDays: 5,
      totals: {
        sharers: 2,
        invites: 3,
        conversions: 2,
        shareRate: 0.4,
        invitesPerSharer: 1.5,
        conversionRate: 0.6667,
        k: 0.4,
      },
      campaigns: [
        {
          campaign: null,
          sharers: 2,
          invites: 2,
          conversions: 2,
          shareRate: 0.4,
          invitesPerSharer: 1,
          conversionRate: 1,
          k: 0.4,
        },
        {
          campaign: 'spring',
          sharers: 1,
          invites: 1,
          conversions: 0,
          shareRate: 0.2,
          invitesPerSharer: 1,
          conversionRate: 0,
          k: 0,
        },
      ],
      topInviters: [
        { openid: 'o_report_a', invites: 2, conversions: 1 },
        { openid: 'o_report_e', invites: 1, conversions: 1 },
      ],
    })
    // a period before any of it: zeros and null ratios
    const empty = await inviteReport(get().db, {
      appid: app,
      from: '2026-10-01',
      to: '2026-10-07',
      timeZone: TZ,
      now,
      live,
    })
    // days neither built nor read live: no Σ DAU (not 0)
    expect(empty.activeMemberDays).toBeNull()
    expect(empty.totals).toEqual({
      sharers: 0,
      invites: 0,
      conversions: 0,
      shareRate: null,
      invitesPerSharer: null,
      conversionRate: null,
      k: null,
    })
  })
})
