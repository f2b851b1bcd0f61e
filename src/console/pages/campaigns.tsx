/**
 * 推送: the account's campaigns with status, schedule, audience and a compact funnel, and the
 * operator's moves — schedule, pause, resume, stop — through `changeCampaign` (audited with the
 * operator's name), and a link to edit those not sending yet (campaign-edit.tsx). Read with the
 * functions the campaign API calls.
 */
import * as v from 'valibot'
import { changeCampaign } from '../../admin/actions/campaign-actions.js'
import {
  type CampaignView,
  editableCampaigns,
  findCampaign,
  listCampaigns,
} from '../../admin/reads/campaign-views.js'
import { campaignFunnels } from '../../analytics/campaigns.js'
import { liveToday } from '../../analytics/series.js'
import { CAMPAIGN_MOVES, type CampaignMove } from '../../community/campaign-lifecycle.js'
import type { Audience } from '../../community/campaigns.js'
import { localDay } from '../../community/community-time.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Notice } from '../components/form.js'
import { beforeOf, Pager } from '../components/pager.js'
import { accountOf, actorOf, ConsoleRefusal, requireRole } from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

const PATH = '/campaigns'
/** Campaigns a page (newest first, keyset on id). */
const PAGE = 50

/** Who a campaign reaches, in words. */
export function audienceLabel(a: Audience, t: Translate): string {
  const parts = [
    a.segment && t('campaigns.segment', { name: t(`campaigns.seg.${a.segment}` as MessageKey) }),
    a.tag !== undefined && t('campaigns.tag', { id: a.tag }),
    a.group && t('campaigns.group', { chat: a.group.chatId, channel: a.group.channel }),
  ].filter((x): x is string => typeof x === 'string')
  return parts.length ? parts.join(' + ') : t('campaigns.all')
}

/** When a campaign runs, in words (times in the community time zone). */
export function scheduleLabel(s: CampaignView['schedule'], t: Translate, fmt: Format): string {
  if (s.cron) return t('campaigns.cron', { cron: s.cron })
  const at = s.at ? fmt.dateTime(new Date(s.at)) : '—'
  return t('campaigns.once', { time: at })
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
                { label: t('campaigns.schedule'), cell: (k) => scheduleLabel(k.schedule, t, fmt) },
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
                        movesFrom(k.status).map((m) => (
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
                        ))}
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
