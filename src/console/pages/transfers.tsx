/**
 * 积分商城 → 返现打款: the account's cashback transfers (one WeChat Pay transfer bill per cashback
 * redemption), newest first and paged, filtered by state. Read-only: a transfer is cancelled by
 * cancelling its redemption (兑换记录).
 */
import { isTransferState, listTransfers, TRANSFER_STATES } from '../../admin/reads/reward-reads.js'
import { DataTable } from '../components/data-table.js'
import { beforeOf, keepAccount, Pager } from '../components/pager.js'
import { SelectField } from '../components/select.js'
import { accountOf, ConsoleRefusal } from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { memberHref } from './members.js'
import { PAGE, RewardsTabs } from './reward-tabs.js'

const PATH = '/rewards/transfers'

export const transfersPage: ConsolePage = {
  section: 'rewards',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt } = c.var
      const appid = accountOf(c)
      const asked = c.req.query('state') ?? ''
      if (asked !== '' && !isTransferState(asked))
        throw new ConsoleRefusal(400, 'rewards.error.state')
      const state = asked === '' ? undefined : asked
      const before = beforeOf(c)
      const rows = await listTransfers(deps.db, appid, { limit: PAGE + 1, before, state })
      const page = rows.slice(0, PAGE)
      const lookup = (code: string) => keepAccount(c, '/console/rewards/redemptions', { code })
      return renderPage(
        c,
        { title: t('rewards.title'), section: 'rewards' },
        <>
          <RewardsTabs t={t} current="/console/rewards/transfers" />
          <section class="card" aria-labelledby="transfers">
            <h2 id="transfers">{t('rewards.transfers')}</h2>
            <p class="muted">{t('rewards.transfersHint')}</p>
            <form method="get" action={`/console${PATH}`} class="filters">
              {c.req.query('appid') && (
                <input type="hidden" name="appid" value={c.req.query('appid')} />
              )}
              <SelectField
                id="transfer-state"
                name="state"
                label={t('rewards.filterState')}
                value={asked}
                options={[
                  ['', t('rewards.filterAll')],
                  ...TRANSFER_STATES.map((s): [string, string] => [s, t(`rewards.transfer.${s}`)]),
                ]}
              />
              <button type="submit">{t('rewards.filter')}</button>
            </form>
            <DataTable
              rows={page}
              empty={state ? t('rewards.transfersEmpty') : t('common.empty')}
              columns={[
                {
                  label: t('rewards.billNo'),
                  cell: (x) => <code class="wrap">{x.outBillNo}</code>,
                },
                {
                  label: t('rewards.redemptionCode'),
                  cell: (x) => <a href={lookup(x.redemptionCode)}>{x.redemptionCode}</a>,
                },
                {
                  label: t('rewards.member'),
                  cell: (x) => (
                    <a
                      href={
                        x.memberAppid === appid
                          ? memberHref(x.openid, c.req.query('appid'))
                          : memberHref(x.openid, appid, true)
                      }
                      class="wrap"
                    >
                      {x.openid}
                    </a>
                  ),
                },
                { label: t('rewards.amount'), num: true, cell: (x) => fmt.fen(x.amountFen) },
                { label: t('rewards.state'), cell: (x) => t(`rewards.transfer.${x.state}`) },
                { label: t('rewards.attempts'), num: true, cell: (x) => fmt.count(x.attempts) },
                {
                  label: t('rewards.reason'),
                  cell: (x) => (
                    <span class="wrap">{(x.failReason ?? x.error ?? '').slice(0, 160)}</span>
                  ),
                },
                { label: t('rewards.time'), cell: (x) => fmt.dateTime(new Date(x.created_at)) },
                {
                  label: t('rewards.updatedAt'),
                  cell: (x) => fmt.dateTime(new Date(x.updated_at)),
                },
              ]}
            />
            <Pager
              c={c}
              path={`/console${PATH}`}
              keep={['state']}
              older={rows.length > PAGE ? page.at(-1)?.id : undefined}
            />
          </section>
        </>,
      )
    })
  },
}
