import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { bindIdentity, issueBindingCode, memberByIdentity } from './identities.js'

const now = new Date('2026-11-24T04:00:00Z')
const minutes = (n: number) => new Date(now.getTime() + n * 60_000)

forEachDatabase('linking identities with binding codes', (get) => {
  let n = 0
  const member = async () =>
    (
      await get()
        .db.insertInto('members')
        .values({ appid: 'wxidentities000001', openid: `o_id_${++n}`, first_seen_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id

  it('tells the sender who used a code that they are bound when the same 绑定 comes again; anyone else is refused', async () => {
    const db = get().db
    const id = await member()
    const { code } = await issueBindingCode(db, id, now)
    const bind = (channel: string, externalId: string, at: Date, c = code) =>
      bindIdentity(db, { channel, externalId, code: c, now: at })
    expect(await bind('bridge:home', 'wxid_a', now)).toEqual({ memberId: id })
    // the same message handled again (a retry), even once the code has expired: bound, unchanged
    expect(await bind('bridge:home', 'wxid_a', minutes(1))).toEqual({ memberId: id })
    expect(await bind('bridge:home', 'wxid_a', minutes(11))).toEqual({ memberId: id })
    // another sender, or the same id on another channel, cannot use it
    expect(await bind('bridge:home', 'wxid_b', minutes(1))).toBeNull()
    expect(await bind('wecom_aibot', 'wxid_a', minutes(1))).toBeNull()
    const linked = await db
      .selectFrom('member_identities')
      .select(['channel', 'external_id', 'member_id', 'linked_at'])
      .where('member_id', '=', id)
      .execute()
    expect(linked).toEqual([
      { channel: 'bridge:home', external_id: 'wxid_a', member_id: id, linked_at: now },
    ])
    expect(
      await db
        .selectFrom('binding_codes')
        .select(['used_at', 'used_by'])
        .where('code', '=', code)
        .executeTakeFirst(),
    ).toEqual({ used_at: now, used_by: 'bridge:home:wxid_a' })

    // moved to another member since: the old code no longer answers for them
    const other = await member()
    const second = await issueBindingCode(db, other, minutes(2))
    expect(await bind('bridge:home', 'wxid_a', minutes(2), second.code)).toEqual({
      memberId: other,
    })
    expect(await bind('bridge:home', 'wxid_a', minutes(3))).toBeNull()
    expect((await memberByIdentity(db, 'bridge:home', 'wxid_a'))?.id).toBe(other)
  })
})
