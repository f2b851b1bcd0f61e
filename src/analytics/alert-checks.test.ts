import type { Insertable, Kysely } from 'kysely'
import { expect, it } from 'vitest'
import {
  activeOn,
  addMembers,
  alertRows,
  campaignRun,
  paidOrder,
  pushes,
  runningCampaign,
} from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { enqueue, LANE } from '../community/outbox.js'
import type { Database, TransfersTable } from '../db/schema.js'
import { ACTIVES_SO_FAR } from './alert-checks.js'
import { type EvaluateOptions, evaluateAlerts } from './alerts.js'
import { trafficCounter } from './traffic-counter.js'

const TZ = 'Asia/Shanghai'
/** Monday 2026-11-16, 10:00 in Beijing. */
const T0 = new Date('2026-11-16T02:00:00Z')
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000)
const DAY = 1440

forEachDatabase(
  'alert rules: each opens once per episode, repeats hourly, closes',
  (get, dbName) => {
    const app = (name: string) => `wx_${dbName}_${name}`
    /**
     * A cashback reward of `appid` (made at `since`) and a maker of its transfers to `member`, each
     * with its redemption (cancelled for a failed transfer, else issued); `tag` keeps the bill
     * numbers and redemption codes of one test apart from another's.
     */
    async function cashbackTransfers(appid: string, member: number, tag: string, since: Date) {
      const { db } = get()
      const reward = await db
        .insertInto('rewards')
        .values({
          appid,
          code: 4,
          name: '50元返现',
          cost: 5000,
          stock: null,
          per_member_limit: null,
          created_at: since,
          kind: 'cashback',
          cashback_fen: 5000,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      let n = 0
      return async (
        forAppid: string,
        t: Omit<
          Insertable<TransfersTable>,
          | 'appid'
          | 'member_id'
          | 'redemption_id'
          | 'out_bill_no'
          | 'pay_appid'
          | 'openid'
          | 'amount_fen'
          | 'updated_at'
        > & { updated_at?: Date },
      ) => {
        n++
        const { id } = await db
          .insertInto('redemptions')
          .values({
            appid: forAppid,
            member_id: member,
            reward_id: reward.id,
            cost: 5000,
            code: `${dbName.toUpperCase()}${tag}${n}`,
            status: t.state === 'fail' ? 'cancelled' : 'issued',
            created_at: t.created_at,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
        await db
          .insertInto('transfers')
          .values({
            appid: forAppid,
            member_id: member,
            redemption_id: id,
            out_bill_no: `${tag}${dbName}X${n}`.replace(/[^A-Za-z0-9]/g, ''),
            pay_appid: 'wx_mp',
            openid: 'o_mp',
            amount_fen: 5000,
            attempts: 1,
            updated_at: t.created_at,
            ...t,
          })
          .execute()
      }
    }
    const evaluate = (
      db: Kysely<Database>,
      appid: string,
      now: Date,
      extra: Partial<EvaluateOptions> = {},
    ) =>
      evaluateAlerts({
        db,
        appid,
        now,
        timeZone: TZ,
        locale: 'zh-CN',
        quietHours: { from: 22 * 60, to: 8 * 60 },
        robots: { keys: {}, baseUrl: 'http://127.0.0.1:9' },
        ...extra,
      })
    const rows = async (appid: string, rule: string) =>
      (await alertRows(get().db, appid)).filter((r) => r.rule === rule)

    it('active members: down more than 10 % vs. the same time last week', async () => {
      const { db } = get()
      const appid = app('dau')
      const ids = await addMembers(db, appid, `${appid}_m`, 30, at(-10 * DAY))
      const weekAgo = at(-7 * DAY)
      await activeOn(db, appid, '2026-11-09', ids)
      // The first evaluation records the sample; a week before it there is none: not judged.
      expect(await evaluate(db, appid, weekAgo)).toContainEqual({
        rule: 'active_members_drop',
        event: 'skipped',
        reason: 'no data',
      })
      const sample = await db
        .selectFrom('alert_samples')
        .select('value')
        .where('appid', '=', appid)
        .where('metric', '=', ACTIVES_SO_FAR)
        .executeTakeFirstOrThrow()
      expect(Number(sample.value)).toBe(30)
      // what the job recorded through last week's morning
      await db
        .insertInto('alert_samples')
        .values(
          Array.from({ length: 40 }, (_, i) => ({
            appid,
            metric: ACTIVES_SO_FAR,
            at: new Date(weekAgo.getTime() + (i + 1) * 5 * 60_000),
            value: 30,
          })),
        )
        .execute()
      // exactly 10 % down (27 of 30): not past the threshold
      await activeOn(db, appid, '2026-11-16', ids.slice(0, 27))
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'active_members_drop')).toHaveLength(0)
      // 26: 13.3 % down → an episode opens, delivered once
      await db
        .deleteFrom('member_days')
        .where('member_id', '=', ids[26]!)
        .where('day', '=', '2026-11-16')
        .execute()
      const opened = await evaluate(db, appid, at(1))
      expect(opened).toContainEqual(
        expect.objectContaining({ rule: 'active_members_drop', event: 'opened', notified: true }),
      )
      let r = await rows(appid, 'active_members_drop')
      expect(r).toHaveLength(1)
      expect(r[0]).toMatchObject({ status: 'open', notifications: 1, threshold: 0.1 })
      expect(r[0]!.value).toBeCloseTo(4 / 30, 8)
      expect(r[0]!.message).toContain('13.3%')
      expect(r[0]!.message).toContain('今天到现在 26 人，上周同期 30 人')
      // still down: the same episode, not delivered again within the hour
      await evaluate(db, appid, at(2))
      await evaluate(db, appid, at(60))
      r = await rows(appid, 'active_members_drop')
      expect(r).toHaveLength(1)
      expect(r[0]!.notifications).toBe(1)
      // an hour after the delivery: repeated once
      const repeated = await evaluate(db, appid, at(61))
      expect(repeated).toContainEqual(
        expect.objectContaining({ rule: 'active_members_drop', event: 'repeated', notified: true }),
      )
      await evaluate(db, appid, at(62))
      r = await rows(appid, 'active_members_drop')
      expect(r[0]!.notifications).toBe(2)
      // 28 of 30 (6.7 %): recovered, closed
      await activeOn(db, appid, '2026-11-16', ids.slice(26, 28))
      await evaluate(db, appid, at(63))
      r = await rows(appid, 'active_members_drop')
      expect(r).toHaveLength(1)
      expect(r[0]).toMatchObject({ status: 'closed' })
      expect(new Date(r[0]!.closed_at!).getTime()).toBe(at(63).getTime())
    })

    it('error rate: refused and failed pushes and failed sends over 5 % of all in 15 minutes', async () => {
      const { db } = get()
      const appid = app('errors')
      await pushes(db, appid, { n: 100, at: at(-5), seconds: 1, tag: `${appid}-ok` })
      await pushes(db, appid, { n: 4, at: at(-5), seconds: 1, status: 'failed', tag: `${appid}-f` })
      // two processes count sends and refusals in the same minute; the database adds them up
      const clock = { now: () => at(-3) }
      const one = trafficCounter(db, clock)
      const two = trafficCounter(db, clock)
      one.add(appid, 'send_sent', 40)
      two.add(appid, 'send_sent', 10)
      one.add(appid, 'send_failed', 2)
      two.add(appid, 'push_refused')
      await Promise.all([one.flush(), two.flush()])
      const sent = await db
        .selectFrom('traffic_counts')
        .select('n')
        .where('appid', '=', appid)
        .where('name', '=', 'send_sent')
        .execute()
      expect(sent.map((s) => Number(s.n))).toEqual([50])
      // 7 of 157 = 4.5 %: no alert
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'error_rate')).toHaveLength(0)
      // two more refused: 9 of 159 = 5.7 %
      one.add(appid, 'push_refused', 2)
      await one.flush()
      await evaluate(db, appid, at(0.5))
      await evaluate(db, appid, at(1))
      let r = await rows(appid, 'error_rate')
      expect(r).toHaveLength(1)
      expect(r[0]).toMatchObject({ status: 'open', notifications: 1 })
      expect(r[0]!.message).toContain('错误率 5.7%')
      expect(r[0]!.message).toContain(
        '159 次推送和发送中有 9 次出错（处理失败 4、拒收 3、发送失败 2',
      )
      // the window moved past them: too few events to judge, the alert stays as it is
      await evaluate(db, appid, at(16))
      expect((await rows(appid, 'error_rate'))[0]!.status).toBe('open')
      // thirty good pushes in the window: recovered
      await pushes(db, appid, { n: 30, at: at(10), seconds: 1, tag: `${appid}-later` })
      await evaluate(db, appid, at(17))
      r = await rows(appid, 'error_rate')
      expect(r).toHaveLength(1)
      expect(r[0]!.status).toBe('closed')

      // fewer than 20 events are not judged, however bad
      const few = app('errors-few')
      await pushes(db, few, { n: 19, at: at(-1), seconds: 1, status: 'failed', tag: `${few}-f` })
      await evaluate(db, few, at(0))
      expect(await rows(few, 'error_rate')).toHaveLength(0)
    })

    it('reply latency: p95 over 3 s across instances, pushes still being handled included', async () => {
      const { db } = get()
      const appid = app('latency')
      await pushes(db, appid, { n: 20, at: at(-5), seconds: 3, tag: `${appid}-a` })
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'reply_latency_p95')).toHaveLength(0)
      await pushes(db, appid, { n: 20, at: at(-4), seconds: 3.5, tag: `${appid}-b` })
      await evaluate(db, appid, at(0))
      let r = await rows(appid, 'reply_latency_p95')
      expect(r).toHaveLength(1)
      expect(r[0]!.value).toBeCloseTo(3.5, 6)
      expect(r[0]!.message).toContain('40 条推送的 p95 延迟 3.5 秒')
      // fast again
      await pushes(db, appid, { n: 20, at: at(10), seconds: 1, tag: `${appid}-c` })
      await evaluate(db, appid, at(20))
      expect((await rows(appid, 'reply_latency_p95'))[0]!.status).toBe('closed')
      // pushes claimed 5 minutes ago and not finished: 300 s — a new episode, opened quietly
      // because the last delivery of this rule was less than an hour ago
      await pushes(db, appid, { n: 20, at: at(25), seconds: null, tag: `${appid}-d` })
      const flapped = await evaluate(db, appid, at(30))
      expect(flapped).toContainEqual(
        expect.objectContaining({ rule: 'reply_latency_p95', event: 'opened', notified: false }),
      )
      r = await rows(appid, 'reply_latency_p95')
      expect(r.map((x) => x.status)).toEqual(['closed', 'open'])
      expect(r[1]!.value).toBeCloseTo(300, 6)
      expect(r[1]!.notifications).toBe(0)
      // an hour after the first episode's delivery the open one is delivered
      await pushes(db, appid, { n: 20, at: at(50), seconds: null, tag: `${appid}-e` })
      expect(await evaluate(db, appid, at(61))).toContainEqual(
        expect.objectContaining({ rule: 'reply_latency_p95', event: 'repeated', notified: true }),
      )
    })

    it('outbox backlog: a lane whose oldest due item waited over 10 minutes; campaigns after quiet hours', async () => {
      const { db } = get()
      const appid = app('backlog')
      const notice = (source: string, due: Date, lane: 1 | 2) =>
        enqueue(
          db,
          [
            {
              appid,
              source,
              openid: 'o_x',
              kind: 'custom',
              payload: { msgtype: 'text', text: { content: 'hi' } },
              lane,
              notBefore: due,
            },
          ],
          due,
        )
      await notice('n-1', at(-10), LANE.notice)
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'outbox_backlog')).toHaveLength(0)
      await evaluate(db, appid, at(0.5))
      let r = await rows(appid, 'outbox_backlog')
      expect(r).toHaveLength(1)
      expect(r[0]).toMatchObject({ dim: 'notice', status: 'open', value: 630 })
      expect(r[0]!.message).toContain('发送队列积压（notice）：最早一条已等待 11 分钟，1 条待发')
      await db
        .updateTable('push_outbox')
        .set({ status: 'sent' })
        .where('appid', '=', appid)
        .execute()
      await evaluate(db, appid, at(1))
      expect((await rows(appid, 'outbox_backlog'))[0]!.status).toBe('closed')

      // a campaign item due at 21:50 waits through the quiet hours (22:00–08:00 Beijing)
      const evening = new Date('2026-11-16T13:50:00Z')
      await notice('c-1', evening, LANE.campaign)
      await evaluate(db, appid, new Date('2026-11-16T15:00:00Z'))
      await evaluate(db, appid, new Date('2026-11-17T00:09:00Z'))
      r = await rows(appid, 'outbox_backlog')
      expect(r.filter((x) => x.status === 'open')).toHaveLength(0)
      // 08:11: eleven minutes since the quiet hours ended
      await evaluate(db, appid, new Date('2026-11-17T00:11:00Z'))
      r = await rows(appid, 'outbox_backlog')
      expect(r.filter((x) => x.status === 'open').map((x) => [x.dim, x.value])).toEqual([
        ['campaign', 660],
      ])
    })

    it('job stalled: two scheduled slots without a success, runs in progress not counted', async () => {
      const { db } = get()
      const appid = app('jobs')
      const job = { name: `job-${dbName}-five`, cron: '*/5 * * * *' }
      const never = { name: `job-${dbName}-never`, cron: '* * * * *' }
      const jobs = [job, never]
      const run = (slot: Date, status: 'running' | 'succeeded' | 'failed', leaseUntil?: Date) =>
        db
          .insertInto('job_runs')
          .values({
            job: job.name,
            slot,
            trigger: 'schedule',
            status,
            worker: 'test',
            result: null,
            error: null,
            started_at: slot,
            finished_at: status === 'running' ? null : slot,
            lease_until: leaseUntil ?? null,
          })
          .execute()
      await run(at(0), 'succeeded')
      // only on the account given the jobs (the first one)
      expect(await evaluate(db, appid, at(20))).toContainEqual({
        rule: 'job_stalled',
        event: 'skipped',
        reason: 'not here',
      })
      // 10:11: 10:05 missed (10:10 is within its 2-minute grace)
      await evaluate(db, appid, at(11), { jobs })
      expect(await rows(appid, 'job_stalled')).toHaveLength(0)
      // 10:12: 10:10 is still running under a live lease
      await run(at(10), 'running', at(13))
      await evaluate(db, appid, at(12), { jobs })
      expect(await rows(appid, 'job_stalled')).toHaveLength(0)
      // paused between two bounded invocations (Workers), no lease: in progress all the same
      await db
        .updateTable('job_runs')
        .set({ status: 'paused', lease_until: null })
        .where('job', '=', job.name)
        .where('slot', '=', at(10))
        .execute()
      await evaluate(db, appid, at(12.2), { jobs })
      expect(await rows(appid, 'job_stalled')).toHaveLength(0)
      await db
        .updateTable('job_runs')
        .set({ status: 'failed' })
        .where('job', '=', job.name)
        .where('slot', '=', at(10))
        .execute()
      await evaluate(db, appid, at(12.5), { jobs })
      let r = await rows(appid, 'job_stalled')
      expect(r.map((x) => [x.dim, x.status, x.value])).toEqual([[job.name, 'open', 2]])
      expect(r[0]!.message).toContain(`定时任务 ${job.name} 已连续 2 次没有成功`)
      await evaluate(db, appid, at(14), { jobs })
      expect(await rows(appid, 'job_stalled')).toHaveLength(1)
      // 10:15 succeeded
      await run(at(15), 'succeeded')
      await evaluate(db, appid, at(18), { jobs })
      r = await rows(appid, 'job_stalled')
      expect(r.map((x) => [x.dim, x.status])).toEqual([[job.name, 'closed']])
    })

    it('refunds failing: failed or abnormal in the last day, or still refused after 3 tries', async () => {
      const { db } = get()
      const appid = app('refunds')
      const [member] = await addMembers(db, appid, `${appid}_m`, 1, at(-DAY))
      const order = await paidOrder(db, appid, {
        memberId: member!,
        fen: 1000,
        paidAt: at(-DAY),
        no: `${appid}-1`,
      })
      const refund = (no: string, status: 'failed' | 'requested' | 'success', attempts: number) =>
        db
          .insertInto('refunds')
          .values({
            order_id: order,
            out_refund_no: no,
            amount_fen: 100,
            reason: 'test',
            status,
            refund_id: null,
            error: null,
            attempts,
            next_attempt_at: null,
            created_at: at(-90),
            updated_at: at(-60),
          })
          .execute()
      await refund(`${appid}-ok`, 'success', 1)
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'refunds_failing')).toHaveLength(0)
      await refund(`${appid}-failed`, 'failed', 10)
      await evaluate(db, appid, at(0))
      let r = await rows(appid, 'refunds_failing')
      expect(r.map((x) => [x.status, x.value])).toEqual([['open', 1]])
      expect(r[0]!.message).toContain('1 笔退款失败')
      // a day later it is no longer news
      await evaluate(db, appid, at(DAY))
      expect((await rows(appid, 'refunds_failing'))[0]!.status).toBe('closed')
      // a refund WeChat Pay keeps refusing: a new episode, delivered (the last one was a day ago)
      await refund(`${appid}-stuck`, 'requested', 3)
      expect(await evaluate(db, appid, at(DAY + 1))).toContainEqual(
        expect.objectContaining({ rule: 'refunds_failing', event: 'opened', notified: true }),
      )
      r = await rows(appid, 'refunds_failing')
      expect(r.map((x) => x.status)).toEqual(['closed', 'open'])
    })

    it('transfers stuck: pending after 3 tries or not waiting for the member after a day; a member not confirming is not', async () => {
      const { db } = get()
      const appid = app('transfers')
      const [member] = await addMembers(db, appid, `${appid}_m`, 1, at(-2 * DAY))
      const add = await cashbackTransfers(appid, member!, 'QT', at(-2 * DAY))
      const transfer = (
        forAppid: string,
        state: 'pending' | 'accepted' | 'processing' | 'wait_user_confirm' | 'fail',
        attempts: number,
        createdAt: Date,
        error: string | null = null,
      ) =>
        add(forAppid, {
          state,
          fail_reason: state === 'fail' ? 'OVERDUE_CLOSE' : null,
          attempts,
          error,
          accepted_at: state === 'pending' ? null : createdAt,
          created_at: createdAt,
        })
      // normal: a fresh pending, retried twice; a bill the member left unconfirmed (OVERDUE_CLOSE);
      // a bill waiting for the member for a day; another account's stuck transfer
      await transfer(appid, 'pending', 2, at(-60))
      await transfer(appid, 'accepted', 0, at(-60))
      await transfer(appid, 'fail', 1, at(-2 * DAY))
      await transfer(appid, 'wait_user_confirm', 1, at(-DAY - 60))
      await transfer(app('transfers_other'), 'pending', 9, at(-2 * DAY))
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'transfers_stuck')).toHaveLength(0)
      // WeChat Pay refused 3 creates for want of funds (a transient refusal: sent again)
      await transfer(appid, 'pending', 3, at(-30), '403 NOT_ENOUGH 资金不足')
      await evaluate(db, appid, at(1))
      let r = await rows(appid, 'transfers_stuck')
      expect(r.map((x) => [x.status, x.value])).toEqual([['open', 1]])
      expect(r[0]!.message).toContain('1 笔返现转账卡住')
      // what to do about it: the message says what WeChat Pay last answered
      expect(r[0]!.message).toContain('最近一次的错误：403 NOT_ENOUGH 资金不足')
      // accepted, never waiting for the member: stuck once it is older than the window
      await transfer(appid, 'processing', 1, at(-DAY + 10))
      await evaluate(db, appid, at(2))
      expect((await rows(appid, 'transfers_stuck'))[0]!.value).toBe(1)
      await evaluate(db, appid, at(11))
      expect((await rows(appid, 'transfers_stuck'))[0]!.value).toBe(2)
      // both reach the member: the alert closes
      await db
        .updateTable('transfers')
        .set({ state: 'wait_user_confirm' })
        .where('appid', '=', appid)
        .where('state', 'in', ['pending', 'processing'])
        .where('created_at', '<', at(-20))
        .execute()
      await evaluate(db, appid, at(12))
      r = await rows(appid, 'transfers_stuck')
      expect(r.map((x) => x.status)).toEqual(['closed'])
    })

    it('transfers failed: merchant-side FAILs in the window, by when they failed, per account; not the member’s own', async () => {
      const { db } = get()
      const appid = app('tfailed')
      const other = app('tfailed_other')
      const [member] = await addMembers(db, appid, `${appid}_m`, 1, at(-3 * DAY))
      const add = await cashbackTransfers(appid, member!, 'TF', at(-3 * DAY))
      // A transfer that ended `fail` (its redemption cancelled, points back) at `failedAt`.
      const failed = (forAppid: string, reason: string, failedAt: Date, createdAt = failedAt) =>
        add(forAppid, {
          state: 'fail',
          fail_reason: reason,
          accepted_at: createdAt,
          settled_at: failedAt,
          created_at: createdAt,
          updated_at: failedAt,
        })
      // the member's own: not confirmed in 24 h, cancelled by us, the member's wallet; a
      // merchant-side failure a day and a minute ago (made within the day before it); another
      // account's merchant-side failure
      await failed(appid, 'OVERDUE_CLOSE', at(-10), at(-DAY - 10))
      await failed(appid, 'MCH_CANCEL', at(-10))
      await failed(appid, 'REAL_NAME_CHECK_FAIL', at(-10))
      await failed(appid, 'PAYER_ACCOUNT_ABNORMAL', at(-DAY - 1), at(-DAY - 30))
      await failed(other, 'TRANSFER_SCENE_INVALID', at(-10))
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'transfers_failed')).toHaveLength(0)
      // the merchant lost its transfer product: one made two days ago failed just now, one more,
      // and a create refused for good (its error code is the reason)
      await failed(appid, 'PRODUCT_AUTH_CHECK_FAIL', at(-5), at(-2 * DAY))
      await failed(appid, 'PRODUCT_AUTH_CHECK_FAIL', at(-3))
      await failed(appid, 'NO_AUTH', at(-2))
      await evaluate(db, appid, at(0))
      let r = await rows(appid, 'transfers_failed')
      expect(r.map((x) => [x.status, x.value])).toEqual([['open', 3]])
      expect(r[0]!.message).toContain('24 小时内 3 笔返现转账')
      expect(r[0]!.message).toContain('最多的原因是 PRODUCT_AUTH_CHECK_FAIL（2 笔）')
      // per account: the other one's own alert, with its own reason
      await evaluate(db, other, at(0))
      const o = await rows(other, 'transfers_failed')
      expect(o.map((x) => [x.status, x.value])).toEqual([['open', 1]])
      expect(o[0]!.message).toContain('最多的原因是 TRANSFER_SCENE_INVALID（1 笔）')
      // a day after the first failure it leaves the window; a tie names the latest reason
      await evaluate(db, appid, at(DAY - 4))
      r = await rows(appid, 'transfers_failed')
      expect(r.map((x) => [x.status, x.value])).toEqual([['open', 2]])
      expect(r[0]!.message).toContain('最多的原因是 NO_AUTH（1 笔）')
      await evaluate(db, appid, at(DAY))
      expect((await rows(appid, 'transfers_failed')).map((x) => x.status)).toEqual(['closed'])
    })

    it('reconciliation mismatches: skipped without a run, read from the reconciliation or an injected source', async () => {
      const { db } = get()
      const appid = app('recon')
      expect(await evaluate(db, appid, at(0))).toContainEqual({
        rule: 'reconciliation_mismatches',
        event: 'skipped',
        reason: 'no data',
      })
      let open = 2
      const mismatches = async () => open
      await evaluate(db, appid, at(1), { mismatches })
      expect((await rows(appid, 'reconciliation_mismatches')).map((x) => x.value)).toEqual([2])
      open = 0
      await evaluate(db, appid, at(2), { mismatches })
      expect((await rows(appid, 'reconciliation_mismatches'))[0]!.status).toBe('closed')

      // the daily reconciliation's own tables (src/shop/reconcile.ts)
      const { sql } = await import('kysely')
      const run = async (account: string, day: string) =>
        (
          await sql<{ id: number }>`insert into reconciliation_runs (appid, mchid, bill_date, kind,
            status, created_at, updated_at) values (${account}, ${`mch_${account}`}, ${day}, 'trade',
            'reconciled', ${at(3)}, ${at(3)}) returning id`.execute(db)
        ).rows[0]!.id
      const mismatch = (runId: number, key: string, status: string) =>
        sql`insert into reconciliation_mismatches (run_id, kind, key, detail, status, created_at,
          updated_at) values (${runId}, 'missing_here', ${key}, 'test', ${status}, ${at(3)},
          ${at(3)})`.execute(db)
      const mine = await run(appid, '2026-11-01')
      const other = await run(`${appid}_other`, '2026-11-01')
      await mismatch(mine, 'QZ1', 'open')
      await mismatch(mine, 'QZ2', 'resolved')
      await mismatch(other, 'QZ3', 'open')
      await evaluate(db, appid, at(3))
      let r = await rows(appid, 'reconciliation_mismatches')
      expect(r.map((x) => [x.status, x.value])).toEqual([
        ['closed', 0],
        ['open', 1],
      ])
      await sql`update reconciliation_mismatches set status = 'resolved' where run_id = ${mine}`.execute(
        db,
      )
      await evaluate(db, appid, at(4))
      r = await rows(appid, 'reconciliation_mismatches')
      expect(r.map((x) => x.status)).toEqual(['closed', 'closed'])
    })

    it('campaign conversion: the newest finished window 20 % below the campaign’s previous runs', async () => {
      const { db } = get()
      const appid = app('campaign')
      const members = await addMembers(db, appid, `${appid}_m`, 100, at(-10 * DAY))
      const id = await runningCampaign(db, appid, '召回', at(-10 * DAY))
      await campaignRun(db, { campaignId: id, slot: at(-3 * DAY), members, converted: 10 })
      await campaignRun(db, { campaignId: id, slot: at(-2 * DAY), members, converted: 10 })
      // yesterday's run (its 24-hour window just ended): 8 % vs. 10 % — exactly 20 % down
      await campaignRun(db, { campaignId: id, slot: at(-DAY), members, converted: 8 })
      await evaluate(db, appid, at(0))
      expect(await rows(appid, 'campaign_conversion_drop')).toHaveLength(0)
      // one of the eight converted after the window: 7 % — 30 % down
      await db
        .updateTable('campaign_recipients')
        .set({ converted_at: at(1) })
        .where('campaign_id', '=', id)
        .where('slot', '=', at(-DAY))
        .where('member_id', '=', members[0]!)
        .execute()
      await evaluate(db, appid, at(1))
      let r = await rows(appid, 'campaign_conversion_drop')
      expect(r.map((x) => [x.dim, x.status])).toEqual([[String(id), 'open']])
      expect(r[0]!.value).toBeCloseTo(0.3, 10)
      expect(r[0]!.message).toContain('活动「召回」最近一轮转化率 7.0%，此前为 10.0%，下降 30.0%')
      // today's run, judged once its window is over, converts 12 %: recovered
      await campaignRun(db, { campaignId: id, slot: at(0), members, converted: 12 })
      await evaluate(db, appid, at(DAY - 1))
      expect((await rows(appid, 'campaign_conversion_drop'))[0]!.status).toBe('open')
      await evaluate(db, appid, at(DAY))
      r = await rows(appid, 'campaign_conversion_drop')
      expect(r[0]!.status).toBe('closed')
      // a finished campaign is no longer watched: its open alert closes
      await db
        .deleteFrom('campaign_recipients')
        .where('slot', '=', at(0))
        .where('campaign_id', '=', id)
        .execute()
      await db
        .deleteFrom('campaign_runs')
        .where('slot', '=', at(0))
        .where('campaign_id', '=', id)
        .execute()
      await evaluate(db, appid, at(DAY + 1))
      expect((await rows(appid, 'campaign_conversion_drop')).map((x) => x.status)).toEqual([
        'closed',
        'open',
      ])
      await db.updateTable('campaigns').set({ status: 'finished' }).where('id', '=', id).execute()
      await evaluate(db, appid, at(DAY + 2))
      expect((await rows(appid, 'campaign_conversion_drop')).map((x) => x.status)).toEqual([
        'closed',
        'closed',
      ])
    })
  },
)
