/**
 * A bridge message handled again after a step that follows its work failed (here: storing its
 * answer): what the message did is not done twice, and the retry answers what the first attempt
 * would have — `兑换 <编号>` redeems once, `绑定 <code>` stays bound.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { applyDelta, withMemberLocked } from '../community/points-ledger.js'
import { createPusher } from '../sandbox/pusher.js'
import { signBridgeRequest } from './bridge.js'

const SECRET = 'bridge-shared-secret-0123456789'
const BOUND = '绑定成功 ✅ 现在可以在这里签到、查积分了。'
const BAD_CODE = '绑定码无效或已过期，请在公众号重新发送「绑定」获取。'

forEachDatabase('bridge messages handled again after a later failure', (get, dbName) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db, {
      config: testConfig({ BRIDGES: JSON.stringify({ home: SECRET }) }),
    })
  })
  afterAll(() => server.close())

  const say = async (sender: string, text: string, id: string) => {
    const body = JSON.stringify({
      type: 'message',
      id,
      chat: { id: 'room1' },
      sender: { id: sender },
      text: `@圈子助手 ${text}`,
      mentioned: true,
    })
    const timestamp = String(Math.floor(Date.now() / 1000))
    const nonce = `n-${Math.random().toString(36).slice(2)}`
    const res = await fetch(`${server.url}/bridge/home`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-bridge-timestamp': timestamp,
        'x-bridge-nonce': nonce,
        'x-bridge-signature': await signBridgeRequest(SECRET, { timestamp, nonce, body }),
      },
      body,
    })
    return { status: res.status, json: (await res.json()) as { reply?: string | null } }
  }
  const bindingCode = async (openid: string) => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    return /绑定码：(\d{6})/.exec((await oa.text(openid, '绑定')).reply!.Content as string)![1]!
  }
  /**
   * Sends `text` as message `id` while storing its answer fails (the handler's work is done and
   * committed; the bridge gets a 500 and will retry): returns the answer that was lost, which the
   * failure kept in the claim's `error`.
   */
  const sayWhileAnswersFail = async (sender: string, text: string, id: string) => {
    const db = get().db
    await sql`create function lose_answer() returns trigger language plpgsql as $fn$
      begin
        if new.status = 'replied' then raise exception 'answer lost: %', new.reply; end if;
        return new;
      end $fn$`.execute(db)
    await sql`create trigger lose_answer before update on inbound_events
      for each row execute function lose_answer()`.execute(db)
    try {
      expect((await say(sender, text, id)).status).toBe(500)
    } finally {
      await sql`drop trigger lose_answer on inbound_events`.execute(db)
      await sql`drop function lose_answer()`.execute(db)
    }
    const claim = await db
      .selectFrom('inbound_events')
      .select(['status', 'error'])
      .where('appid', '=', 'bridge:home')
      .where('dedupe_key', '=', id)
      .executeTakeFirstOrThrow()
    expect(claim.status).toBe('failed')
    return JSON.parse(/answer lost: (.*)$/s.exec(claim.error!)![1]!).reply as string
  }

  it('redeems once for a 兑换 handled again: one redemption, one debit, stock taken once, the same code', async () => {
    const db = get().db
    const contact = `wxid_redeemer_${dbName}`
    const openid = `o_redeemer_${dbName}`
    expect(
      (await say(contact, `绑定 ${await bindingCode(openid)}`, `bind-r-${dbName}`)).json,
    ).toEqual({ reply: BOUND })
    const me = await db
      .selectFrom('members')
      .selectAll()
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
    await withMemberLocked(db, me.id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: SAFE_ACCOUNT.appid,
          memberId: me.id,
          rule: 'grant',
          idempotencyKey: `test-grant:${me.id}`,
          now: new Date(),
          timeZone: 'Asia/Shanghai',
        },
        290,
      ),
    )
    const balance = me.points_balance + 290
    const id = `redeem-${dbName}`
    const lost = await sayWhileAnswersFail(contact, '兑换 1', id)
    expect(lost).toMatch(/^兑换成功 🎁 10元优惠券\n兑换码：[A-Z0-9]{10}\n/)
    const retry = await say(contact, '兑换 1', id)
    expect(retry.status).toBe(200)
    expect(retry.json.reply).toBe(lost)

    const redemptions = await db
      .selectFrom('redemptions')
      .select('code')
      .where('member_id', '=', me.id)
      .execute()
    expect(redemptions).toHaveLength(1)
    expect(lost).toContain(
      `兑换码：${redemptions[0]!.code}\n消耗 100 积分，剩余 ${balance - 100} 积分`,
    )
    const debits = await db
      .selectFrom('points_ledger')
      .select('delta')
      .where('member_id', '=', me.id)
      .where('rule', '=', 'redeem')
      .execute()
    expect(debits).toEqual([{ delta: -100 }])
    const after = await db
      .selectFrom('members')
      .select('points_balance')
      .where('id', '=', me.id)
      .executeTakeFirstOrThrow()
    expect(after.points_balance).toBe(balance - 100)
    const reward = await db
      .selectFrom('rewards')
      .select('stock')
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .where('code', '=', 1)
      .executeTakeFirstOrThrow()
    expect(reward.stock).toBe(999)
    // answered now: the event again gets the stored answer; a new message redeems anew
    expect((await say(contact, '兑换 1', id)).json.reply).toBe(lost)
    expect((await say(contact, '兑换 1', `${id}-2`)).json.reply).not.toContain(redemptions[0]!.code)
  })

  it('answers a 绑定 handled again as bound, and refuses the used code to anyone else', async () => {
    const db = get().db
    const contact = `wxid_binder_${dbName}`
    const openid = `o_binder_${dbName}`
    const code = await bindingCode(openid)
    const id = `bind-again-${dbName}`
    expect(await sayWhileAnswersFail(contact, `绑定 ${code}`, id)).toBe(BOUND)
    expect(await say(contact, `绑定 ${code}`, id)).toEqual({ status: 200, json: { reply: BOUND } })
    const other = await say(`wxid_other_${dbName}`, `绑定 ${code}`, `bind-other-${dbName}`)
    expect(other.json.reply).toBe(BAD_CODE)
    const linked = await db
      .selectFrom('member_identities')
      .innerJoin('members', 'members.id', 'member_identities.member_id')
      .select(['member_identities.external_id', 'members.openid'])
      .where('member_identities.channel', '=', 'bridge:home')
      .where('member_identities.external_id', 'in', [contact, `wxid_other_${dbName}`])
      .execute()
    expect(linked).toEqual([{ external_id: contact, openid }])
    // a retry is still a try: the sender's five, then one a minute
    for (let i = 0; i < 3; i++)
      expect((await say(contact, `绑定 ${code}`, `bind-more-${i}-${dbName}`)).json.reply).toBe(
        BOUND,
      )
    expect((await say(contact, `绑定 ${code}`, `bind-sixth-${dbName}`)).json.reply).toMatch(
      /^绑定尝试太频繁，请 \d+ 秒后再试。$/,
    )
  })
})
