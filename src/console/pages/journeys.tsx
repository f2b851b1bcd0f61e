/**
 * 推送 → 旅程: the account's lifecycle journeys — the segment that starts each, its status, how its
 * enrollments ended and each step's funnel (audience → sent → delivered → converted) — and the
 * operator's switch on / pause through `changeJourney` (audited with the operator's name). Read
 * with the functions the journey API calls.
 */
import { changeJourney } from '../../admin/actions/journey-actions.js'
import { findJourney } from '../../community/journey-catalog.js'
import type { JourneyStepReport } from '../../community/journey-report.js'
import { journeyReport, listJourneys } from '../../community/journey-report.js'
import type { JourneyStepsIssue } from '../../community/journey-steps.js'
import { journeyName, journeyStepName, templateRuleText } from '../code-labels.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Notice } from '../components/form.js'
import { accountOf, actorOf, ConsoleRefusal, requireRole } from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

const PATH = '/journeys'

const TEMPLATE_FIELDS: Record<string, MessageKey> = {
  template_id: 'campaignForm.field.templateId',
  url: 'campaignForm.field.url',
}

/**
 * A step's pushes that did not go out, as the campaign report names them: skipped (capped, opted
 * out, unreachable) and failed always, the other endings of enqueued pushes when there are any.
 */
export function stepUnsent(t: Translate, fmt: Format, s: JourneyStepReport): string {
  const skipped = s.skipped.capped + s.skipped.optedOut + s.skipped.unreachable
  const parts: [MessageKey, number, boolean][] = [
    ['report.skipped', skipped, true],
    ['report.failed', s.failed, true],
    ['report.withdrawnOptedOut', s.withdrawn.optedOut, false],
    ['journeys.cancelled', s.withdrawn.cancelled, false],
    ['report.unknown', s.unknown, false],
    ['report.queued', s.queued, false],
  ]
  return parts
    .filter(([, n, always]) => always || n > 0)
    .map(([label, n]) => t('common.fact', { label: t(label), value: fmt.count(n) }))
    .join(' · ')
}

/** Why a journey cannot be switched on, in the operator's words (the API says it in English). */
export function journeyIssueText(t: Translate, issue: JourneyStepsIssue): string {
  const step = issue.step === undefined ? '' : journeyStepName(t, issue.step)
  if (issue.code !== 'template') return t(`journeys.issue.${issue.code}`, { step })
  const rest = issue.path.replace(/^steps\.\d+\.template\.?/, '')
  const named = TEMPLATE_FIELDS[rest]
  const field = /^data\.([^.]+)/.exec(rest)?.[1] ?? (named ? t(named) : rest)
  const reason = issue.rule ? templateRuleText(t, issue.rule) : t('campaignForm.reason.invalid')
  return t('journeys.issue.template', { step, field, reason })
}

export const journeysPage: ConsolePage = {
  section: 'campaigns',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt, session } = c.var
      const appid = accountOf(c)
      const journeys = await listJourneys(deps.db, appid)
      const rows = await Promise.all(
        journeys.map(async (j) => ({
          ...j,
          report: await journeyReport(deps.db, j),
        })),
      )
      const canAct = session.operator.role !== 'viewer'
      const moved = rows.find((j) => String(j.id) === c.req.query('moved'))
      return renderPage(
        c,
        { title: t('journeys.title'), section: 'campaigns' },
        <>
          <Notice
            kind="ok"
            text={
              moved &&
              t('journeys.moved', {
                name: journeyName(t, moved),
                status: t(`journeys.status.${moved.status}`),
              })
            }
          />
          <p>
            <a href="/console/campaigns">{t('journeys.back')}</a>
          </p>
          <p class="muted">{t('journeys.note')}</p>
          <section class="card" aria-label={t('journeys.title')}>
            <DataTable
              rows={rows}
              empty={t('journeys.empty')}
              columns={[
                { label: t('campaigns.name'), cell: (j) => journeyName(t, j) },
                {
                  label: t('journeys.segment'),
                  cell: (j) => t(`campaigns.seg.${j.segment}` as MessageKey),
                },
                { label: t('campaigns.status'), cell: (j) => t(`journeys.status.${j.status}`) },
                {
                  label: t('journeys.enrollments'),
                  num: true,
                  cell: (j) => {
                    const e = j.report.enrollments
                    return [e.started, e.active, e.converted, e.left, e.completed]
                      .map((n) => fmt.count(n))
                      .join(' / ')
                  },
                },
                {
                  label: t('journeys.steps'),
                  cell: (j) => (
                    <ul class="list">
                      {j.report.steps.map((s) => (
                        <li>
                          {t('journeys.step', {
                            key: journeyStepName(t, s.key),
                            hours: s.delayHours,
                            channel: t(`journeys.channel.${s.channel}`),
                          })}
                          {': '}
                          {[s.audience, s.sent, s.delivered, s.converted]
                            .map((n) => fmt.count(n))
                            .join(' → ')}
                          <br />
                          <span class="muted">{stepUnsent(t, fmt, s)}</span>
                        </li>
                      ))}
                    </ul>
                  ),
                },
                {
                  label: t('campaigns.actions'),
                  cell: (j) => {
                    if (!canAct) return ''
                    const to = j.status === 'active' ? 'pause' : 'activate'
                    return (
                      <form method="post" action={`/console${PATH}/${j.id}/${to}`} class="inline">
                        <CsrfField token={session.csrfToken} />
                        <button
                          type="submit"
                          class="secondary"
                          aria-label={`${t(`journeys.move.${to}`)} ${journeyName(t, j)}`}
                        >
                          {t(`journeys.move.${to}`)}
                        </button>
                      </form>
                    )
                  },
                },
              ]}
            />
            <p class="muted">{t('journeys.legend')}</p>
          </section>
        </>,
      )
    })

    app.post(
      `${PATH}/:id{[0-9]{1,15}}/:move{activate|pause}`,
      requireRole('owner', 'operator'),
      async (c) => {
        const appid = accountOf(c)
        const id = Number(c.req.param('id'))
        if (!(await findJourney(deps.db, appid, id)))
          throw new ConsoleRefusal(404, 'journeys.unknown')
        const status = c.req.param('move') === 'activate' ? 'active' : 'paused'
        const r = await changeJourney(deps, actorOf(c), { appid, id, status })
        if (!r) throw new ConsoleRefusal(404, 'journeys.unknown')
        if (!r.moved)
          throw new ConsoleRefusal(409, 'journeys.cannotMove', {
            problem:
              'issue' in r && r.issue
                ? journeyIssueText(c.var.t, r.issue)
                : c.var.t(`journeys.status.${r.status}`),
          })
        return c.redirect(`/console${PATH}?moved=${id}`, 303)
      },
    )
  },
}
