/**
 * 活动: the next four weeks' occurrences of the open activities (each cron expanded in the
 * community time zone, with sign-up counts), every activity with its next reminder, and the
 * create form — validated by `createActivityInput`, the API's schema, created by `createActivity`.
 */
import * as v from 'valibot'
import { createActivity, createActivityInput } from '../../admin/actions/activity-actions.js'
import { activityCalendar, signupCounts } from '../../admin/reads/activity-calendar.js'
import { listActivities } from '../../admin/reads/activity-reads.js'
import { localDay } from '../../community/community-time.js'
import { DataTable } from '../components/data-table.js'
import { Notice } from '../components/form.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  isLimited,
  refuseLimited,
  requireRole,
} from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import {
  ActivityForm,
  type ActivityFormValues,
  BLANK,
  createBody,
  type FormErrors,
  formErrors,
  readForm,
} from './activity-form.js'
import { PeriodLabel } from './activity-period.js'

const PATH = '/activities'
/** How far ahead the calendar looks, in community days. */
const DAYS = 28

async function list(c: ConsoleContext, deps: ConsoleDeps) {
  const { t, fmt, session } = c.var
  const appid = accountOf(c)
  const now = deps.clock.now()
  const activities = await listActivities(deps.db, appid, now)
  const calendar = activityCalendar(activities, { now, timeZone: deps.timeZone, days: DAYS })
  const upcoming = calendar.filter((o) => o.activity.signup)
  const from = upcoming.map((o) => o.period).sort()[0] ?? localDay(now, deps.timeZone)
  const counts = await signupCounts(
    deps.db,
    activities.map((a) => a.id),
    from,
  )
  // The calendar is in slot order: an activity's first occurrence with a slot has its next one.
  const next = new Map<number, Date>()
  for (const o of calendar)
    if (o.slots[0] && !next.has(o.activity.id)) next.set(o.activity.id, o.slots[0])
  const created = c.req.query('created')
  return renderPage(
    c,
    { title: t('activities.title'), section: 'activities' },
    <>
      <Notice kind="ok" text={created ? t('activities.created', { key: created }) : undefined} />
      {session.operator.role !== 'viewer' && (
        <p>
          <a href={`/console${PATH}/new`}>{t('activities.new')}</a>
        </p>
      )}
      <section class="card" aria-labelledby="calendar">
        <h2 id="calendar">{t('activities.calendar')}</h2>
        <p class="muted">{t('activities.calendarHint')}</p>
        <DataTable
          rows={upcoming}
          empty={t('common.empty')}
          columns={[
            {
              label: t('activities.when'),
              cell: (o) =>
                o.slots[0] ? (
                  <>
                    {fmt.dateTime(o.slots[0])}
                    {o.slots.length > 1 && (
                      <span class="muted">
                        {' '}
                        · {t('activities.moreSlots', { n: o.slots.length - 1 })}
                      </span>
                    )}
                  </>
                ) : (
                  <span class="muted">{t('activities.current')}</span>
                ),
            },
            { label: t('activities.activity'), cell: (o) => o.activity.name },
            {
              label: t('activities.occurrence'),
              cell: (o) => <PeriodLabel t={t} cadence={o.activity.cadence} period={o.period} />,
            },
            {
              label: t('activities.signups'),
              cell: (o) => {
                const n = counts.get(`${o.activity.id}:${o.period}`) ?? {
                  confirmed: 0,
                  waitlisted: 0,
                }
                return t('activities.signupCount', {
                  confirmed: fmt.count(n.confirmed),
                  waitlisted: fmt.count(n.waitlisted),
                  capacity:
                    o.activity.capacity === null
                      ? ''
                      : t('activities.ofCapacity', { capacity: fmt.count(o.activity.capacity) }),
                })
              },
            },
            {
              label: '',
              cell: (o) => (
                <a
                  href={`/console${PATH}/${o.activity.key}?period=${o.period}`}
                  aria-label={`${t('activities.open')}：${o.activity.name} ${o.period}`}
                >
                  {t('activities.open')}
                </a>
              ),
            },
          ]}
        />
      </section>
      <section class="card" aria-labelledby="all">
        <h2 id="all">{t('activities.list')}</h2>
        <DataTable
          rows={activities}
          empty={t('common.empty')}
          columns={[
            {
              label: t('activities.name'),
              cell: (a) => <a href={`/console${PATH}/${a.key}`}>{a.name}</a>,
            },
            { label: t('activities.key'), cell: (a) => a.key },
            { label: t('activities.cron'), cell: (a) => <code>{a.cron}</code> },
            { label: t('activities.cadence'), cell: (a) => t(`activities.cadence.${a.cadence}`) },
            { label: t('activities.points'), num: true, cell: (a) => fmt.count(a.points) },
            {
              label: t('activities.capacity'),
              num: true,
              cell: (a) =>
                !a.signup
                  ? t('activities.none')
                  : a.capacity === null
                    ? t('activities.noLimit')
                    : fmt.count(a.capacity),
            },
            { label: t('activities.status'), cell: (a) => t(`activities.status.${a.status}`) },
            {
              label: t('activities.nextSlot'),
              cell: (a) => {
                const at = next.get(a.id)
                return at ? fmt.dateTime(at) : t('activities.none')
              },
            },
          ]}
        />
      </section>
    </>,
  )
}

function newForm(
  c: ConsoleContext,
  values: ActivityFormValues,
  errors: FormErrors = {},
  status?: 400,
) {
  const { t, session } = c.var
  const query = c.req.query('appid') ? `?appid=${encodeURIComponent(c.req.query('appid')!)}` : ''
  // an operator with a grant limit creates activities worth no points: the field shows 0, fixed
  const limited = isLimited(c)
  return renderPage(
    c,
    { title: t('activities.new'), section: 'activities' },
    <>
      <Notice kind="error" text={status ? t('activities.error.form') : undefined} />
      <section class="card">
        <ActivityForm
          t={t}
          action={`/console${PATH}${query}`}
          csrf={session.csrfToken}
          values={limited ? { ...values, points: '0' } : values}
          errors={errors}
          pointsFixed={limited}
        />
      </section>
    </>,
    status,
  )
}

export const activitiesPage: ConsolePage = {
  section: 'activities',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => list(c, deps))
    app.get(`${PATH}/new`, requireRole('owner', 'operator'), (c) => newForm(c, BLANK))

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const appid = accountOf(c)
      const values = readForm(await c.req.parseBody())
      const parsed = v.safeParse(createActivityInput, createBody(values))
      if (!parsed.success) return newForm(c, values, formErrors(parsed.issues), 400)
      if (parsed.output.points > 0) refuseLimited(c)
      const actor = actorOf(c)
      const row = await createActivity(deps, actor, { ...parsed.output, appid })
      if (!row) return newForm(c, values, { key: 'activities.error.keyTaken' }, 400)
      return c.redirect(`/console${PATH}/${row.key}?created=${row.key}`, 303)
    })
  },
}
