import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { pruneSteps } from '../../jobs/retention.js'
import { forEachDatabase } from '../../test/databases.js'
import { systemClock } from '../clock.js'
import { loadConfig } from '../config.js'
import { createLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { WechatNetworkError } from '../wechat/api/errors.js'
import { getJoinWay } from '../wecom/contact.js'
import { inviteCode, inviteScene } from './invites.js'
import { joinQr } from './join-ways.js'
import { databaseTokenStore } from './token-store.js'

const CORP = 'ww0011223344556677'
const SECRET = 'join-ways-secret'

let wecom: SandboxApi
beforeAll(async () => {
  wecom = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wecom.close())
// A fault a failing test left queued must not hit the next test.
afterEach(() => wecom.clearFaults())

forEachDatabase('WeCom join ways (join-ways joinQr, syncJoinWays)', (get, dbName) => {
  const lines: Record<string, unknown>[] = []
  const logger = createLogger({
    level: 'warn',
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  })
  /** The WeCom client as the app builds it, with a short per-attempt timeout. */
  const api = () =>
    accountClient({
      tokenStore: databaseTokenStore(get().db, systemClock),
      appid: `wecom:${CORP}`,
      secret: SECRET,
      baseUrl: wecom.url,
      mode: 'wecom',
      clock: systemClock,
      logger,
      backoffMs: 1,
      timeoutMs: 2000,
    })
  const member = async (openid: string) =>
    get()
      .db.insertInto('members')
      .values({ appid: 'wx_join_ways', openid: `${openid}_${dbName}`, first_seen_at: new Date() })
      .returningAll()
      .executeTakeFirstOrThrow()
  const storedOf = (memberId: number) =>
    get().db.selectFrom('wecom_join_ways').selectAll().where('member_id', '=', memberId).execute()
  /** The join ways left on WeCom for a member's invite scene. */
  const onWecom = async (m: { id: number; appid: string }) => {
    const state = inviteScene(await inviteCode(get().db, m, new Date()))
    return wecom.joinWays().filter((w) => w.state === state)
  }
  const qr = (m: { id: number; appid: string }, chatIds: string[]) =>
    joinQr(get().db, api(), { member: m, chatIds, now: new Date(), logger })

  it('calls add_join_way once when its answer is lost (timeout): a clear error, nothing stored; the next 入群 makes one', async () => {
    const m = await member('o_jw_timeout')
    const adds = wecom.calls('groupchat.add_join_way')
    // WeCom creates the config, then its answer never comes: the client times out.
    wecom.fault('groupchat.add_join_way', { dropResponse: true })
    const failed = await qr(m, ['wrA']).catch((e: unknown) => e)
    expect(wecom.calls('groupchat.add_join_way') - adds).toBe(1) // not retried blindly
    expect(failed).toBeInstanceOf(WechatNetworkError)
    expect(await storedOf(m.id)).toEqual([])
    expect(lines.filter((l) => l.code === 'JOIN_WAY_MAYBE_CREATED')).toMatchObject([
      { memberId: m.id, level: 'warn' },
    ])
    // The next 入群 creates (and stores) a new one.
    const again = await qr(m, ['wrA'])
    expect(wecom.calls('groupchat.add_join_way') - adds).toBe(2)
    expect(await storedOf(m.id)).toMatchObject([{ qr_code: again.qrCode }])
  })

  /** What a phone scanning a shared join QR reaches on WeCom: its join way, or none (dead QR). */
  const scan = (qrCode: string) => wecom.joinWays().filter((w) => w.qr_code === qrCode)
  const notUpdated = (memberId: number) =>
    lines.filter((l) => l.code === 'JOIN_WAY_NOT_UPDATED' && l.memberId === memberId)

  it('points a shared join QR at the newly configured groups in place: the same QR now leads there, nothing deleted or created', async () => {
    const m = await member('o_jw_stale')
    const first = await qr(m, ['wrOld1', 'wrOld2'])
    const [old] = await storedOf(m.id)
    const calls = (method: string) => wecom.calls(`groupchat.${method}`)
    const before = { add: calls('add_join_way'), del: calls('del_join_way') }
    const updates = calls('update_join_way')
    // Same groups: reused, nothing sent.
    expect((await qr(m, ['wrOld1', 'wrOld2'])).qrCode).toBe(first.qrCode)
    expect(calls('update_join_way') - updates).toBe(0)
    // WECOM_JOIN_CHATS changed (groups filled up, new ones added).
    const next = await qr(m, ['wrNew1', 'wrNew2'])
    expect(next).toMatchObject({ qrCode: first.qrCode, state: first.state, created: false })
    expect(calls('update_join_way') - updates).toBe(1)
    expect(calls('del_join_way') - before.del).toBe(0)
    expect(calls('add_join_way') - before.add).toBe(0)
    // The QR already shared (posters) works and leads into the new groups, crediting the inviter.
    expect(scan(first.qrCode)).toMatchObject([
      {
        config_id: old!.config_id,
        chat_id_list: ['wrNew1', 'wrNew2'],
        state: first.state,
        scene: 2,
        remark: `invite ${m.id}`,
        mark_source: true,
      },
    ])
    expect((await onWecom(m)).map((w) => w.config_id)).toEqual([old!.config_id])
    expect((await getJoinWay(api(), old!.config_id)).chat_id_list).toEqual(['wrNew1', 'wrNew2'])
    expect(await storedOf(m.id)).toMatchObject([
      {
        config_id: old!.config_id,
        qr_code: first.qrCode,
        state: first.state,
        chat_ids: JSON.stringify(['wrNew1', 'wrNew2']),
      },
    ])
    // Reused again for the new groups: nothing more sent.
    expect((await qr(m, ['wrNew1', 'wrNew2'])).qrCode).toBe(first.qrCode)
    expect(calls('update_join_way') - updates).toBe(1)
  })

  it('hands out the stored join QR as it is when WeCom refuses the update (JOIN_WAY_NOT_UPDATED); the next 入群 updates it, retrying a transient failure', async () => {
    const m = await member('o_jw_upd_refused')
    const first = await qr(m, ['wrU1'])
    const [old] = await storedOf(m.id)
    wecom.fault('groupchat.update_join_way', { errcode: 48002, errmsg: 'api forbidden' })
    const kept = await qr(m, ['wrU2'])
    expect(kept).toMatchObject({ qrCode: first.qrCode, created: false })
    // Unchanged but marked failed (a sweep takes it after the join ways that never failed).
    expect(await storedOf(m.id)).toEqual([{ ...old, sync_failed_at: expect.any(Date) }])
    expect(scan(first.qrCode)).toMatchObject([{ chat_id_list: ['wrU1'] }])
    expect(notUpdated(m.id)).toMatchObject([
      {
        level: 'warn',
        configId: old!.config_id,
        error: { message: expect.stringContaining('groupchat.update_join_way failed: 48002') },
      },
    ])
    // Next 入群: a 500 first (update_join_way is idempotent: retried), then updated.
    const updates = wecom.calls('groupchat.update_join_way')
    wecom.fault('groupchat.update_join_way', { status: 500 })
    expect((await qr(m, ['wrU2'])).qrCode).toBe(first.qrCode)
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(2)
    expect(scan(first.qrCode)).toMatchObject([{ chat_id_list: ['wrU2'], state: first.state }])
    expect(await storedOf(m.id)).toMatchObject([
      { chat_ids: JSON.stringify(['wrU2']), sync_failed_at: null },
    ])
  })

  it('learns the groups of a join way stored before they were recorded (get_join_way): kept when they match, updated in place when not', async () => {
    const m = await member('o_jw_legacy')
    const first = await qr(m, ['wrL1'])
    const forget = () =>
      get()
        .db.updateTable('wecom_join_ways')
        .set({ chat_ids: null })
        .where('member_id', '=', m.id)
        .execute()
    await forget()
    const updates = wecom.calls('groupchat.update_join_way')
    const dels = wecom.calls('groupchat.del_join_way')
    expect((await qr(m, ['wrL1'])).qrCode).toBe(first.qrCode)
    expect(await storedOf(m.id)).toMatchObject([{ chat_ids: JSON.stringify(['wrL1']) }])
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(0)
    await forget()
    expect((await qr(m, ['wrL2'])).qrCode).toBe(first.qrCode)
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(1)
    expect(wecom.calls('groupchat.del_join_way') - dels).toBe(0)
    expect(await onWecom(m)).toMatchObject([{ chat_id_list: ['wrL2'], qr_code: first.qrCode }])
    expect(await storedOf(m.id)).toMatchObject([{ chat_ids: JSON.stringify(['wrL2']) }])
  })

  it('two 入群 racing after the groups changed both update the one join way: same QR, nothing created or deleted', async () => {
    const m = await member('o_jw_stale_race')
    const first = await qr(m, ['wrR1'])
    const dels = wecom.calls('groupchat.del_join_way')
    const adds = wecom.calls('groupchat.add_join_way')
    const updates = wecom.calls('groupchat.update_join_way')
    // Both updates are in flight at WeCom before either stores what it did.
    wecom.fault('groupchat.update_join_way', { delayMs: 300 }, { delayMs: 300 })
    const [a, b] = await Promise.all([qr(m, ['wrR2']), qr(m, ['wrR2'])])
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(2)
    expect(a.qrCode).toBe(first.qrCode)
    expect(b.qrCode).toBe(first.qrCode)
    expect(await onWecom(m)).toMatchObject([{ chat_id_list: ['wrR2'], qr_code: first.qrCode }])
    expect(await storedOf(m.id)).toMatchObject([{ chat_ids: JSON.stringify(['wrR2']) }])
    expect(wecom.calls('groupchat.add_join_way') - adds).toBe(0)
    expect(wecom.calls('groupchat.del_join_way') - dels).toBe(0)
    expect(notUpdated(m.id)).toEqual([])
  })

  /** The nightly retention step that moves join ways, with WECOM_JOIN_CHATS = `chats`. */
  const sweep = async (chats: string[]) => {
    const step = pruneSteps.find((p) => p.name === 'joinWayGroups')
    if (!step) return 0 // no such step: nothing is moved
    return step.prune({
      db: get().db,
      clock: systemClock,
      logger,
      config: loadConfig({
        WECOM_CORP_ID: CORP,
        WECOM_CALLBACK_TOKEN: 'cbtoken1',
        WECOM_CALLBACK_AES_KEY: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
        WECOM_CONTACT_SECRET: SECRET,
        WECOM_API_BASE: wecom.url,
        WECOM_JOIN_CHATS: JSON.stringify(chats),
      }),
      slot: new Date(),
    })
  }
  const forget = (memberId: number) =>
    get()
      .db.updateTable('wecom_join_ways')
      .set({ chat_ids: null })
      .where('member_id', '=', memberId)
      .execute()

  it('moves (nightly retention) the join ways made for groups no longer configured, also of members who never 入群 again: their shared QRs lead into the new groups', async () => {
    const [kept, stale, legacyStale, legacyKept] = await Promise.all(
      ['o_jw_sw_kept', 'o_jw_sw_stale', 'o_jw_sw_legacy_stale', 'o_jw_sw_legacy_kept'].map(member),
    )
    const keptQr = await qr(kept!, ['wrS1'])
    const staleQr = await qr(stale!, ['wrSOld'])
    const legacyStaleQr = await qr(legacyStale!, ['wrSOld'])
    await forget(legacyStale!.id)
    const legacyQr = await qr(legacyKept!, ['wrS1'])
    await forget(legacyKept!.id)
    const dels = wecom.calls('groupchat.del_join_way')
    const updates = wecom.calls('groupchat.update_join_way')
    const moved = await sweep(['wrS1'])
    expect(moved).toBeGreaterThanOrEqual(2) // ours, and any other test's left on other groups
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(moved)
    expect(wecom.calls('groupchat.del_join_way') - dels).toBe(0)
    for (const [m, shared] of [
      [stale!, staleQr],
      [legacyStale!, legacyStaleQr],
    ] as const) {
      expect(scan(shared.qrCode)).toMatchObject([{ chat_id_list: ['wrS1'], state: shared.state }])
      expect(await storedOf(m.id)).toMatchObject([
        { qr_code: shared.qrCode, chat_ids: JSON.stringify(['wrS1']) },
      ])
    }
    expect(await storedOf(kept!.id)).toMatchObject([{ qr_code: keptQr.qrCode }])
    expect(await storedOf(legacyKept!.id)).toMatchObject([
      { qr_code: legacyQr.qrCode, chat_ids: JSON.stringify(['wrS1']) },
    ])
    for (const shared of [keptQr, legacyQr])
      expect(scan(shared.qrCode)).toMatchObject([{ chat_id_list: ['wrS1'] }])
    // Nothing stale is left: the next sweep updates nothing.
    expect(await sweep(['wrS1'])).toBe(0)
  })

  it('leaves a join way whose update WeCom refused as it was, for the next sweep', async () => {
    await sweep(['wrK1']) // only this test's join ways are stale below
    const m = await member('o_jw_sw_refused')
    const shared = await qr(m, ['wrKOld'])
    const [old] = await storedOf(m.id)
    wecom.fault('groupchat.update_join_way', { errcode: 48002, errmsg: 'api forbidden' })
    expect(await sweep(['wrK1'])).toBe(0)
    expect(await storedOf(m.id)).toEqual([{ ...old, sync_failed_at: expect.any(Date) }])
    expect(scan(shared.qrCode)).toMatchObject([{ chat_id_list: ['wrKOld'] }])
    expect(notUpdated(m.id)).toMatchObject([{ configId: old!.config_id }])
    expect(await sweep(['wrK1'])).toBe(1)
    expect(await storedOf(m.id)).toMatchObject([
      {
        config_id: old!.config_id,
        qr_code: shared.qrCode,
        chat_ids: JSON.stringify(['wrK1']),
        sync_failed_at: null,
      },
    ])
    expect(scan(shared.qrCode)).toMatchObject([{ chat_id_list: ['wrK1'], state: shared.state }])
  })

  it('stops a sweep after three failed updates (WeCom down) and moves the rest next time', async () => {
    await sweep(['wrC1'])
    const ms = await Promise.all(['o_jw_c1', 'o_jw_c2', 'o_jw_c3', 'o_jw_c4'].map(member))
    for (const m of ms) await qr(m, ['wrCOld'])
    const updates = wecom.calls('groupchat.update_join_way')
    const down = { errcode: 48002, errmsg: 'api forbidden' }
    wecom.fault('groupchat.update_join_way', down, down, down)
    expect(await sweep(['wrC1'])).toBe(0)
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(3) // the fourth not tried
    expect(await sweep(['wrC1'])).toBe(4)
    for (const m of ms)
      expect(await storedOf(m.id)).toMatchObject([{ chat_ids: JSON.stringify(['wrC1']) }])
  })

  it('join ways WeCom refuses for good do not stop the sweep: the others are moved, a stale one after three refused ones the first night, and the refused ones are taken last', async () => {
    await sweep(['wrP1']) // only this test's join ways are stale below
    const calls = () => wecom.calls('groupchat.update_join_way')
    // Created one by one: member ids in this order.
    const made: Record<string, Awaited<ReturnType<typeof member>>> = {}
    const shared: Record<string, Awaited<ReturnType<typeof qr>>> = {}
    const make = async (name: string) => {
      made[name] = await member(`o_jw_p_${name}`)
      shared[name] = await qr(made[name]!, ['wrPOld'])
    }
    for (const name of ['r1', 'r2', 'ok1', 'r3', 'ok2']) await make(name)
    for (const name of ['r1', 'r2', 'r3']) {
      const [row] = await storedOf(made[name]!.id)
      wecom.refuseJoinWay(row!.config_id)
    }
    const refused = ['r1', 'r2', 'r3'].map((name) => made[name]!)
    const moved = async (name: string) => {
      expect(await storedOf(made[name]!.id)).toMatchObject([
        { chat_ids: JSON.stringify(['wrP1']), qr_code: shared[name]!.qrCode, sync_failed_at: null },
      ])
      expect(scan(shared[name]!.qrCode)).toMatchObject([{ chat_id_list: ['wrP1'] }])
    }

    // Night 1: three refusals, none three in a row: both others are moved, ok2 after all three.
    let before = calls()
    expect(await sweep(['wrP1'])).toBe(2)
    expect(calls() - before).toBe(5)
    await moved('ok1')
    await moved('ok2')
    for (const m of refused) {
      const [row] = await storedOf(m.id)
      expect(row).toMatchObject({ chat_ids: JSON.stringify(['wrPOld']) })
      expect(row!.sync_failed_at).toBeInstanceOf(Date)
      expect(notUpdated(m.id)).toHaveLength(1)
    }

    // Night 2: a join way stale since, with a higher member id than the refused ones, goes first.
    await make('late')
    before = calls()
    expect(await sweep(['wrP1'])).toBe(1)
    await moved('late')
    // Then the refused ones, each once: three in a row stop the sweep.
    expect(calls() - before).toBe(4)
    for (const m of refused) expect(notUpdated(m.id)).toHaveLength(2)

    // WeCom takes them again: moved, their marks cleared.
    wecom.clearFaults()
    expect(await sweep(['wrP1'])).toBe(3)
    for (const name of ['r1', 'r2', 'r3']) await moved(name)
    expect(await sweep(['wrP1'])).toBe(0)
  })

  it('stores the groups it sent, not how get_join_way lists them: a join way WeCom reports in another order is not updated again (sweep)', async () => {
    await sweep(['wrV1', 'wrV2']) // only this test's join way is stale below
    const m = await member('o_jw_view_sweep')
    const shared = await qr(m, ['wrVOld'])
    // WeCom lists a join way's groups in its own order.
    wecom.viewJoinWayChats((ids) => [...ids].reverse())
    const updates = wecom.calls('groupchat.update_join_way')
    expect(await sweep(['wrV1', 'wrV2'])).toBe(1)
    // The next night and the member's next 入群 send nothing.
    expect(await sweep(['wrV1', 'wrV2'])).toBe(0)
    expect((await qr(m, ['wrV1', 'wrV2'])).qrCode).toBe(shared.qrCode)
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(1)
    expect(await storedOf(m.id)).toMatchObject([
      { qr_code: shared.qrCode, chat_ids: JSON.stringify(['wrV1', 'wrV2']) },
    ])
    expect((await getJoinWay(api(), (await storedOf(m.id))[0]!.config_id)).chat_id_list).toEqual([
      'wrV2',
      'wrV1',
    ])
    // A row stored before the groups were recorded learns WeCom's listing: one update settles it.
    await forget(m.id)
    expect(await sweep(['wrV1', 'wrV2'])).toBe(1)
    expect(await sweep(['wrV1', 'wrV2'])).toBe(0)
    expect(await storedOf(m.id)).toMatchObject([{ chat_ids: JSON.stringify(['wrV1', 'wrV2']) }])
  })

  it('stores the groups it sent, not how get_join_way lists them: a dissolved group WeCom no longer lists does not update the join way on every 入群', async () => {
    const m = await member('o_jw_view_qr')
    const first = await qr(m, ['wrDOld'])
    // WeCom leaves a dissolved group out of the join way's groups.
    wecom.viewJoinWayChats((ids) => ids.filter((id) => id !== 'wrDGone'))
    const updates = wecom.calls('groupchat.update_join_way')
    expect((await qr(m, ['wrD1', 'wrDGone'])).qrCode).toBe(first.qrCode)
    expect((await qr(m, ['wrD1', 'wrDGone'])).qrCode).toBe(first.qrCode)
    expect((await qr(m, ['wrD1', 'wrDGone'])).qrCode).toBe(first.qrCode)
    expect(wecom.calls('groupchat.update_join_way') - updates).toBe(1)
    expect(await storedOf(m.id)).toMatchObject([
      { qr_code: first.qrCode, chat_ids: JSON.stringify(['wrD1', 'wrDGone']) },
    ])
    expect(scan(first.qrCode)).toMatchObject([{ chat_id_list: ['wrD1', 'wrDGone'] }])
  })
})
