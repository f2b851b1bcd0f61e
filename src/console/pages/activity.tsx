/**
 * 活动 → one activity: an occurrence's sign-ups and waitlist (`activitySignups`, the API's read),
 * the points award for that occurrence (`awardActivity`, validated by `awardActivityInput`) and the
 * edit form (`updateActivity`, validated by `updateActivityInput`). Operators and owners act.
 */
import * as v from 'valibot'
import {
  type Activity,
  awardActivity,
  awardActivityInput,
  updateActivity,
  updateActivityInput,
} from '../../admin/actions/activity-actions.js'
import { activitySignups } from '../../admin/reads/activity-reads.js'
import { translator } from '../../bot/i18n.js'
import { findActivity } from '../../community/activities.js'
import { localDayStart } from '../../community/community-time.js'
import { cronSlots } from '../../cron.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Notice } from '../components/form.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  isLimited,
  refuseLimited,
  requireRole,
} from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import {
  ActivityForm,
  type ActivityFormValues,
  type FormErrors,
  formErrors,
  readForm,
  updateBody,
  valuesOf,
} from './activity-form.js'
import { nextPeriod, PeriodLabel, previousPeriod } from './activity-period.js'

const PATH = '/activities/:key'
const href = (a: Activity, period?: string) =>
  `/console/activities/${a.key}${period ? `?period=${period}` : ''}`

async function activityOf(c: ConsoleContext, deps: ConsoleDeps) {
  const a = await findActivity(deps.db, accountOf(c), c.req.param('key') ?? '')
  if (!a || a.key !== c.req.param('key')) throw new ConsoleRefusal(404, 'activities.error.notFound')
  return a
}

/** What the page shows besides the activity: a refused form, or the result of the last action. */
interface Shown {
  period?: string
  form?: { values: ActivityFormValues; errors: FormErrors }
  awardError?: string
  status?: 400
}

async function show(c: ConsoleContext, deps: ConsoleDeps, a: Activity, s: Shown = {}) {
  const { t, fmt, session } = c.var
  const now = deps.clock.now()
  const asked = s.period ?? c.req.query('period')
  let list: Awaited<ReturnType<typeof activitySignups>>
  try {
    list = await activitySignups(deps.db, a, { period: asked, now, timeZone: deps.timeZone })
  } catch (error) {
    if (error instanceof RangeError) throw new ConsoleRefusal(400, 'activities.error.period')
    throw error
  }
  const { period } = list
  const next = nextPeriod(a.cadence, period)
  const slots = cronSlots(
    a.cron,
    new Date(localDayStart(period, deps.timeZone).getTime() - 60_000),
    localDayStart(next, deps.timeZone),
    deps.timeZone,
  )
  let waiting = 0
  const signups = list.signups.map((r) => ({
    ...r,
    position: r.status === 'waitlisted' ? ++waiting : 0,
  }))
  const acts = session.operator.role !== 'viewer'
  const q = c.req.query()
  const notice = q.created
    ? t('activities.created', { key: q.created })
    : q.saved
      ? t(q.saved === '0' ? 'activities.unchanged' : 'activities.updated')
      : q.applied !== undefined
        ? a.points === 0
          ? t('activities.awardNone')
          : t('activities.awarded', { applied: Number(q.applied), other: Number(q.other ?? 0) })
        : undefined
  return renderPage(
    c,
    { title: a.name, section: 'activities' },
    <>
      <p>
        <a href="/console/activities">← {t('activities.title')}</a>
      </p>
      <Notice kind="ok" text={notice} />
      <Notice kind="error" text={s.awardError} />
      <section class="card" aria-labelledby="occurrence">
        <h2 id="occurrence">
          {t('activities.period')}：<PeriodLabel t={t} cadence={a.cadence} period={period} />
        </h2>
        <p>
          <a href={href(a, previousPeriod(a.cadence, period))}>← {t('activities.prev')}</a>
          {' · '}
          <a href={href(a, next)}>{t('activities.next')} →</a>
        </p>
        <form method="get" action={href(a)}>
          <label for="period-day">{t('activities.periodPick')}</label>{' '}
          <input id="period-day" name="period" type="date" value={period} required />{' '}
          <button type="submit" class="secondary">
            {t('activities.show')}
          </button>
        </form>
        <p class="muted">
          {t('activities.slotsIn')}：
          {slots.length === 0
            ? t('activities.none')
            : slots.slice(0, 8).map(fmt.dateTime).join('，')}
        </p>
      </section>
      <section class="card" aria-labelledby="signups">
        <h2 id="signups">
          {t('activities.signupList')}（
          {t('activities.signupCount', {
            confirmed: fmt.count(signups.length - waiting),
            waitlisted: fmt.count(waiting),
            capacity:
              a.capacity === null
                ? ''
                : t('activities.ofCapacity', { capacity: fmt.count(a.capacity) }),
          })}
          ）
        </h2>
        <form method="post" action={`${href(a)}/award`} class="stack" id="award">
          <CsrfField token={session.csrfToken} />
          <input type="hidden" name="period" value={period} />
          <DataTable
            rows={signups}
            empty={t('activities.signupsEmpty')}
            columns={[
              { label: t('activities.member'), cell: (r) => r.openid },
              {
                label: t('activities.signupStatus'),
                cell: (r) =>
                  r.status === 'confirmed'
                    ? t('activities.confirmed')
                    : t('activities.waitlisted', { n: r.position }),
              },
              {
                label: t('activities.signedUpAt'),
                cell: (r) => fmt.dateTime(new Date(r.created_at)),
              },
              ...(acts && a.points > 0
                ? [
                    {
                      label: t('activities.pick'),
                      cell: (r: (typeof signups)[number]) => (
                        <input
                          type="checkbox"
                          name="openid"
                          value={r.openid}
                          checked={r.status === 'confirmed'}
                          aria-label={t('activities.pickLabel', { openid: r.openid })}
                        />
                      ),
                    },
                  ]
                : []),
            ]}
          />
          {acts && a.points > 0 && (
            <>
              <h3>{t('activities.award')}</h3>
              <p class="muted" id="award-hint">
                {t('activities.awardHint', { points: fmt.count(a.points) })}
              </p>
              <label for="award-others">{t('activities.awardOthers')}</label>
              <textarea
                id="award-others"
                name="others"
                rows={3}
                aria-describedby="award-hint"
                style="font:inherit;padding:8px;border:1px solid #ddd;border-radius:6px"
              />
              <button type="submit">{t('activities.awardSubmit')}</button>
            </>
          )}
        </form>
      </section>
      <section class="card" aria-labelledby="settings">
        <h2 id="settings">{acts ? t('activities.edit') : t('activities.details')}</h2>
        <p class="muted">
          {t('activities.key')} <code>{a.key}</code> · {t(`activities.cadence.${a.cadence}`)} ·{' '}
          {t(`activities.status.${a.status}`)}
        </p>
        {acts ? (
          <>
            <Notice kind="error" text={s.form ? t('activities.error.form') : undefined} />
            <ActivityForm
              t={t}
              edit
              action={href(a)}
              csrf={session.csrfToken}
              values={
                isLimited(c)
                  ? { ...(s.form?.values ?? valuesOf(a)), points: String(a.points) }
                  : (s.form?.values ?? valuesOf(a))
              }
              errors={s.form?.errors ?? {}}
              pointsFixed={isLimited(c)}
            />
          </>
        ) : (
          <p>{a.description}</p>
        )}
      </section>
    </>,
    s.status,
  )
}

/** The openids an award names: the ticked sign-ups and the typed lines, each once. */
function openidsOf(body: Record<string, string | File | (string | File)[]>) {
  const ticked = ([] as unknown[]).concat(body.openid ?? []).filter((x) => typeof x === 'string')
  const typed = typeof body.others === 'string' ? body.others.split(/[\s,，]+/) : []
  return [...new Set([...(ticked as string[]), ...typed].map((s) => s.trim()).filter(Boolean))]
}

export const activityPage: ConsolePage = {
  section: 'activities',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => show(c, deps, await activityOf(c, deps)))

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const a = await activityOf(c, deps)
      const form = await c.req.parseBody()
      const values = readForm(form)
      // Points left as the form showed them are not a change: an owner may have set others since
      // (a limited operator's unrelated edit would be refused, anyone's would undo the owner's).
      if (typeof form.pointsShown === 'string' && form.pointsShown.trim() === values.points)
        values.points = String(a.points)
      const parsed = v.safeParse(updateActivityInput, updateBody(values, a))
      if (!parsed.success)
        return show(c, deps, a, {
          form: { values, errors: formErrors(parsed.issues) },
          status: 400,
        })
      if (parsed.output.points !== undefined) refuseLimited(c)
      const changed = Object.keys(parsed.output).length > 0
      if (changed) {
        const actor = actorOf(c)
        await updateActivity(deps, actor, { ...parsed.output, activity: a })
      }
      return c.redirect(`${href(a)}?saved=${changed ? 1 : 0}`, 303)
    })

    app.post(`${PATH}/award`, requireRole('owner', 'operator'), async (c) => {
      const a = await activityOf(c, deps)
      const { t } = c.var
      const body = await c.req.parseBody({ all: true })
      const period = typeof body.period === 'string' ? body.period : undefined
      const parsed = v.safeParse(awardActivityInput, { openids: openidsOf(body), period })
      const refuse = (key: MessageKey, params?: Record<string, string>) =>
        show(c, deps, a, { period, awardError: t(key, params), status: 400 })
      if (!parsed.success) {
        const field = parsed.issues[0]?.path?.[0]?.key
        if (field === 'period') throw new ConsoleRefusal(400, 'activities.error.period')
        return refuse(
          openidsOf(body).length === 0 ? 'activities.error.noMembers' : 'activities.error.tooMany',
        )
      }
      const actor = actorOf(c)
      const withT = { ...deps, t: translator(deps.locale) }
      const result = await awardActivity(
        withT,
        actor,
        { ...parsed.output, activity: a },
        { dailyLimit: true },
      )
      if (result.status === 'unknown')
        return refuse('activities.error.unknown', { openids: result.openids.join('，') })
      if (result.status === 'period')
        return refuse('activities.error.awardPeriod', { first: result.first, last: result.last })
      if (result.status === 'over_limit') {
        const { fmt } = c.var
        return refuse('member.grant.overLimit', {
          granted: fmt.count(result.granted),
          limit: fmt.count(result.limit),
        })
      }
      const results = result.results ?? []
      const applied = results.filter((r) => r.status === 'applied').length
      return c.redirect(
        `${href(a, result.period)}&applied=${applied}&other=${results.length - applied}`,
        303,
      )
    })
  },
}
