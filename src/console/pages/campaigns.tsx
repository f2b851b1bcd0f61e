/**
 * 推送: the account's campaigns with status, schedule, audience and a compact funnel, and the
 * operator's moves — schedule, pause, resume, stop — through `changeCampaign` (audited with the
 * operator's name), and a link to edit those not sending yet (campaign-edit.tsx). Read with the
 * functions the campaign API calls.
 */
import * as v from 'valibot'
import { changeCampaign } from '../../admin/actions/campaign-actions.js'
import { NEXT_RUNS_HORIZON_DAYS, nextRuns } from '../../admin/reads/campaign-next-runs.js'
import {
  type CampaignView,
  campaignView,
  editableCampaigns,
  findCampaign,
  listCampaigns,
} from '../../admin/reads/campaign-views.js'
import { campaignFunnels } from '../../analytics/campaigns.js'
import { liveToday } from '../../analytics/series.js'
import { CAMPAIGN_MOVES, type CampaignMove } from '../../community/campaign-lifecycle.js'
import type { Audience } from '../../community/campaigns.js'
import { localDay } from '../../community/community-time.js'
import { groupChannelName } from '../code-labels.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Notice } from '../components/form.js'
import { beforeOf, Pager } from '../components/pager.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

const PATH = '/campaigns'
/** Campaigns a page (newest first, keyset on id). */
const PAGE = 50

/**
 * Who a campaign reaches, in words (a tag by its WeChat id: the app does not keep tags' names).
 */
export function audienceLabel(a: Audience, t: Translate): string {
  const parts = [
    a.segment && t('campaigns.segment', { name: t(`campaigns.seg.${a.segment}` as MessageKey) }),
    a.tag !== undefined && t('campaigns.tag', { id: a.tag }),
    a.group &&
      t('campaigns.group', { chat: a.group.chatId, channel: groupChannelName(t, a.group.channel) }),
  ].filter((x): x is string => typeof x === 'string')
  return parts.length ? parts.join(' + ') : t('campaigns.all')
}

/**
 * When a campaign runs, in words, times in the community time zone `zone` (named, as the form
 * does): a one-shot time, or a cron expression with its next run while the campaign may still run.
 */
export function scheduleLabel(
  k: Pick<CampaignView, 'schedule' | 'status'>,
  t: Translate,
  fmt: Format,
  o: { now: Date; zone: string },
): string {
  const s = k.schedule
  if (!s.cron)
    return t('campaigns.once', { time: s.at ? fmt.dateTime(new Date(s.at)) : '—', zone: o.zone })
  const cron = t('campaigns.cron', { cron: s.cron })
  if (k.status === 'finished') return cron
  let next: Date | undefined
  try {
    next = nextRuns({ cron: s.cron }, o.now, o.zone, 1)[0]
  } catch {
    return cron // a malformed cron (refused on input) has no next run
  }
  const when = next
    ? t('campaigns.nextRun', { time: fmt.dateTime(next), zone: o.zone })
    : t('campaignForm.nextRunsNone', { days: NEXT_RUNS_HORIZON_DAYS })
  return `${cron} · ${when}`
}

/** The moves a campaign in `status` allows. */
const movesFrom = (status: string) =>
  (Object.keys(CAMPAIGN_MOVES) as CampaignMove[]).filter((m) =>
    (CAMPAIGN_MOVES[m].from as readonly string[]).includes(status),
  )

const moveParams = v.object({
  id: v.pipe(v.string(), v.regex(/^\d{1,15}$/)),
  move: v.picklist(Object.keys(CAMPAIGN_MOVES) as CampaignMove[]),
})

export const campaignsPage: ConsolePage = {
  section: 'campaigns',
  path: PATH,
  mount(app, deps) {
    const live = liveToday(deps.db, undefined, deps.shop)
    app.get(PATH, async (c) => {
      const { t, fmt, session } = c.var
      const appid = accountOf(c)
      const now = deps.clock.now()
      const listed = await listCampaigns(deps.db, appid, { before: beforeOf(c), limit: PAGE + 1 })
      const campaigns = listed.slice(0, PAGE)
      // From the rollups, as the analytics API serves them: never each campaign's recipients.
      const funnels = await campaignFunnels(deps.db, {
        appid,
        ids: campaigns.map((k) => k.id),
        today: localDay(deps.clock.now(), deps.timeZone),
        timeZone: deps.timeZone,
        live,
      })
      const rows = campaigns.map((k) => {
        const variants = funnels.get(k.id) ?? []
        const sum = (f: 'sent' | 'delivered' | 'clicked' | 'converted') =>
          variants.reduce((n, x) => n + x[f], 0)
        return { ...k, funnel: [sum('sent'), sum('delivered'), sum('clicked'), sum('converted')] }
      })
      const canAct = session.operator.role !== 'viewer'
      const editable = canAct ? await editableCampaigns(deps.db, campaigns) : new Set<number>()
      // A notice may name a campaign on an older page (the redirects show the newest).
      const asked = [c.req.query('moved'), c.req.query('created'), c.req.query('edited')]
      const older = await Promise.all(
        asked.map((id) =>
          id && !campaigns.some((k) => String(k.id) === id)
            ? findCampaign(deps.db, appid, id)
            : undefined,
        ),
      )
      const notice = (id: string | undefined, key: 'moved' | 'created' | 'edited') => {
        const k = rows.find((x) => String(x.id) === id) ?? older.find((x) => String(x?.id) === id)
        const move = c.req.query('move') as CampaignMove | undefined
        if (!k) return undefined
        if (key === 'created') return t('campaigns.created', { name: k.name })
        if (key === 'edited') return t('campaignEdit.done', { name: k.name })
        if (!move || !(move in CAMPAIGN_MOVES)) return undefined
        return t('campaigns.moved', { name: k.name, move: t(`campaigns.move.${move}`) })
      }
      return renderPage(
        c,
        { title: t('campaigns.title'), section: 'campaigns' },
        <>
          <Notice
            kind="ok"
            text={
              notice(c.req.query('moved'), 'moved') ??
              notice(c.req.query('created'), 'created') ??
              notice(c.req.query('edited'), 'edited')
            }
          />
          <p>
            {canAct && (
              <>
                <a href={`/console${PATH}/new`}>{t('campaigns.new')}</a>
                {' · '}
              </>
            )}
            <a href="/console/journeys">{t('journeys.link')}</a>
          </p>
          <section class="card" aria-label={t('campaigns.title')}>
            <DataTable
              rows={rows}
              empty={t('common.empty')}
              columns={[
                { label: t('campaigns.name'), cell: (k) => k.name },
                {
                  label: t('campaigns.status'),
                  cell: (k) => t(`campaigns.status.${k.status}` as MessageKey),
                },
                {
                  label: t('campaigns.schedule'),
                  cell: (k) => scheduleLabel(k, t, fmt, { now, zone: deps.timeZone }),
                },
                { label: t('campaigns.audience'), cell: (k) => audienceLabel(k.audience, t) },
                {
                  label: t('campaigns.funnel'),
                  num: true,
                  cell: (k) => k.funnel.map((n) => fmt.count(n)).join(' → '),
                },
                {
                  label: t('campaigns.actions'),
                  cell: (k) => (
                    <div class="actions">
                      <a href={`/console${PATH}/${k.id}`}>{t('campaigns.report')}</a>
                      {editable.has(k.id) && (
                        <a
                          href={`/console${PATH}/${k.id}/edit`}
                          aria-label={`${t('campaignEdit.link')} ${k.name}`}
                        >
                          {t('campaignEdit.link')}
                        </a>
                      )}
                      {canAct &&
                        movesFrom(k.status).map((m) =>
                          // Stopping cannot be undone: it asks first, on a page of its own.
                          m === 'finish' ? (
                            <a
                              href={`/console${PATH}/${k.id}/finish`}
                              aria-label={`${t('campaigns.move.finish')} ${k.name}`}
                            >
                              {t('campaigns.move.finish')}
                            </a>
                          ) : (
                            <form
                              method="post"
                              action={`/console${PATH}/${k.id}/${m}`}
                              class="inline"
                            >
                              <CsrfField token={session.csrfToken} />
                              <button
                                type="submit"
                                class="secondary"
                                aria-label={`${t(`campaigns.move.${m}`)} ${k.name}`}
                              >
                                {t(`campaigns.move.${m}`)}
                              </button>
                            </form>
                          ),
                        )}
                    </div>
                  ),
                },
              ]}
            />
            <Pager c={c} older={listed.length > PAGE ? campaigns.at(-1)?.id : undefined} />
            <p class="muted">{t('campaignEdit.note')}</p>
          </section>
        </>,
      )
    })

    app.get(`${PATH}/:id{[0-9]{1,15}}/finish`, requireRole('owner', 'operator'), (c) =>
      confirmFinish(c, deps),
    )

    // Only the moves' names: other actions under a campaign (…/edit) are other pages' routes.
    const moves = Object.keys(CAMPAIGN_MOVES).join('|')
    app.post(`${PATH}/:id/:move{${moves}}`, requireRole('owner', 'operator'), async (c) => {
      const { t } = c.var
      const p = v.safeParse(moveParams, c.req.param())
      if (!p.success) throw new ConsoleRefusal(404, 'campaigns.unknown')
      const appid = accountOf(c)
      const { move } = p.output
      const actor = actorOf(c)
      const id = Number(p.output.id)
      const result = await changeCampaign(deps, actor, { appid, id, move })
      if (!result) throw new ConsoleRefusal(404, 'campaigns.unknown')
      const moveName = t(`campaigns.move.${move}`)
      if (!result.moved && 'sendTimePassed' in result)
        throw new ConsoleRefusal(409, 'campaigns.sendTimePassed')
      if (!result.moved)
        throw new ConsoleRefusal(409, 'campaigns.cannotMove', {
          status: t(`campaigns.status.${result.status}` as MessageKey),
          move: moveName,
        })
      return c.redirect(`/console${PATH}?moved=${id}&move=${move}`, 303)
    })
  },
}

/**
 * The confirmation step of 停止 (it cannot be undone, and cancels the queued pushes): what stopping
 * does, and the button that posts the move; nothing changes until it is pressed.
 */
async function confirmFinish(c: ConsoleContext, deps: ConsoleDeps) {
  const { t, session } = c.var
  const row = await findCampaign(deps.db, accountOf(c), c.req.param('id') ?? '')
  if (!row) throw new ConsoleRefusal(404, 'campaigns.unknown')
  const k = campaignView(row)
  const back = `/console${PATH}`
  const can = movesFrom(k.status).includes('finish')
  const status = t(`campaigns.status.${k.status}` as MessageKey)
  return renderPage(
    c,
    { title: t('campaigns.finishTitle', { name: k.name }), section: 'campaigns' },
    <section class="card confirm" aria-labelledby="finish" role="alertdialog">
      <h2 id="finish">{k.name}</h2>
      <p class="muted">
        {status} · {scheduleLabel(k, t, c.var.fmt, { now: deps.clock.now(), zone: deps.timeZone })}{' '}
        · {audienceLabel(k.audience, t)}
      </p>
      {can ? (
        <form method="post" action={`/console${PATH}/${k.id}/finish`} class="stack">
          <CsrfField token={session.csrfToken} />
          <p>{t('campaigns.finishText')}</p>
          <div class="actions">
            <button type="submit">{t('campaigns.finishSubmit')}</button>
            <a href={back}>{t('report.back')}</a>
          </div>
        </form>
      ) : (
        <>
          <p>{t('campaigns.finishNot', { status })}</p>
          <p>
            <a href={back}>{t('report.back')}</a>
          </p>
        </>
      )}
    </section>,
  )
}
