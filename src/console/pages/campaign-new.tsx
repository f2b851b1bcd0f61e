/**
 * 推送 → 新建: name, audience (all, a segment, a tag, a group) with its live size and how many are
 * reachable now, one template or A/B variants with a preview, a one-shot time or a cron with its
 * next five runs, and the engine's cap and quiet hours (configuration, shown). Posting makes a
 * draft with `createCampaign`; bad input re-renders the form naming the field, and makes nothing.
 * 推送 → 编辑 (campaign-edit.tsx) shows the same form (`showCampaignForm`), prefilled.
 */
import { createCampaign } from '../../admin/actions/campaign-actions.js'
import { estimateAudience } from '../../admin/reads/campaign-audience.js'
import { NEXT_RUNS_HORIZON_DAYS, nextRuns } from '../../admin/reads/campaign-next-runs.js'
import { SEGMENTS } from '../../community/segments.js'
import { GROUP_CHANNELS, groupChannelName } from '../code-labels.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  requireRole,
} from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import {
  audienceOf,
  DEFAULT_VALUES,
  FORM_FIELDS,
  FORM_VARIANTS,
  type FormValues,
  formValues,
  readCampaignForm,
  zonedInstant,
} from './campaign-form.js'

const PATH = '/campaigns/new'
const ESTIMATE = '/campaigns/estimate'
const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`

/** The bridged channels (`bridge:<id>`) the account's members' groups are on. */
async function bridgeChannels(deps: ConsoleDeps, appid: string): Promise<string[]> {
  const rows = await deps.db
    .selectFrom('group_members as g')
    .innerJoin('members as m', 'm.id', 'g.member_id')
    .select('g.channel')
    .distinct()
    .where('m.appid', '=', appid)
    .where('g.channel', 'like', 'bridge:%')
    .orderBy('g.channel')
    .limit(20)
    .execute()
  return rows.map((r) => r.channel)
}

/** The live figures for the values: audience counts and the next runs, as display text. */
async function estimate(c: ConsoleContext, deps: ConsoleDeps, f: FormValues) {
  const { t, fmt } = c.var
  const now = deps.clock.now()
  const audience = audienceOf(f)
  const counts = audience && (await estimateAudience(deps.db, accountOf(c), audience, now))
  let runs: string[] = []
  try {
    const at = zonedInstant(f.at ?? '', deps.timeZone)
    const schedule = f.scheduleKind === 'cron' ? { cron: f.cron ?? '' } : at && { at }
    runs = schedule ? nextRuns(schedule, now, deps.timeZone).map((d) => fmt.dateTime(d)) : []
  } catch {
    runs = []
  }
  return {
    audience: counts
      ? t('campaignForm.estimate', {
          size: fmt.count(counts.size),
          reachable: fmt.count(counts.reachable),
        })
      : '—',
    audienceDetail: counts
      ? t('campaignForm.estimateDetail', {
          optedOut: fmt.count(counts.optedOut),
          unreachable: fmt.count(counts.unreachable),
        })
      : '',
    runs: runs.length
      ? runs.join('，')
      : t('campaignForm.nextRunsNone', { days: NEXT_RUNS_HORIZON_DAYS }),
  }
}

/** Where the form posts, its title and button, and lines above it (the edit form's). */
export interface CampaignFormPage {
  action: string
  title: string
  submit: string
  intro?: string[]
}

/**
 * The campaign form with `f`'s values and the live figures; with `error`, the problem above it
 * (status 400). 推送 → 编辑 shows it too, prefilled.
 */
export async function showCampaignForm(
  c: ConsoleContext,
  deps: ConsoleDeps,
  f: FormValues,
  page: CampaignFormPage,
  error?: { field: string; reason: string },
) {
  const { t, session } = c.var
  const live = await estimate(c, deps, f)
  const zone = deps.timeZone
  const s = deps.campaigns
  const input = (name: string, label: string, attrs: Record<string, unknown> = {}) => (
    <Field id={`cf-${name}`} label={label}>
      <input id={`cf-${name}`} name={name} value={f[name] ?? ''} {...attrs} />
    </Field>
  )
  const choice = (name: string, value: string) => f[name] === value || undefined
  // The channels a group audience takes, in words: the known ones, the bridges the account's groups
  // use, and the value being edited.
  const groupChannels = [
    ...new Set([
      ...GROUP_CHANNELS,
      ...(await bridgeChannels(deps, accountOf(c))),
      ...(f.groupChannel ? [f.groupChannel] : []),
    ]),
  ]
  return renderPage(
    c,
    { title: page.title, section: 'campaigns' },
    <>
      <Notice kind="error" text={error && t('campaignForm.error', error)} />
      {page.intro?.map((line) => (
        <p class="muted">{line}</p>
      ))}
      <form method="post" action={page.action} class="stack wide" data-estimate={ESTIMATE}>
        <CsrfField token={session.csrfToken} />
        {input('name', t('campaigns.name'), { required: true, maxlength: 80 })}
        <section class="card" aria-labelledby="cf-audience">
          <h2 id="cf-audience">{t('campaigns.audience')}</h2>
          <Field id="cf-audienceKind" label={t('campaignForm.audienceKind')}>
            <select id="cf-audienceKind" name="audienceKind">
              {(['all', 'segment', 'tag', 'group'] as const).map((k) => (
                <option value={k} selected={choice('audienceKind', k)}>
                  {t(`campaignForm.kind.${k}`)}
                </option>
              ))}
            </select>
          </Field>
          <Field id="cf-segment" label={t('campaignForm.segment')}>
            <select id="cf-segment" name="segment">
              {SEGMENTS.map((x) => (
                <option value={x} selected={choice('segment', x)}>
                  {t(`campaigns.seg.${x}` as MessageKey)}
                </option>
              ))}
            </select>
          </Field>
          {input('tag', t('campaignForm.tag'), { inputmode: 'numeric' })}
          <Field id="cf-groupChannel" label={t('campaignForm.groupChannel')}>
            <select id="cf-groupChannel" name="groupChannel">
              {groupChannels.map((x) => (
                <option value={x} selected={choice('groupChannel', x)}>
                  {groupChannelName(t, x)}
                </option>
              ))}
            </select>
          </Field>
          {input('groupChat', t('campaignForm.groupChat'))}
          <p role="status" aria-live="polite">
            <strong data-out="audience">{live.audience}</strong>
            <br />
            <span class="muted" data-out="audienceDetail">
              {live.audienceDetail}
            </span>
          </p>
        </section>
        <section class="card" aria-labelledby="cf-template">
          <h2 id="cf-template">{t('campaignForm.field.template')}</h2>
          <p class="muted">{t('campaignForm.rules')}</p>
          <div class="field">
            <label>
              <input type="checkbox" name="ab" value="1" checked={f.ab === '1'} />{' '}
              {t('campaignForm.abEnabled')}
            </label>
          </div>
          {FORM_VARIANTS.map((key) => {
            const p = key.toLowerCase()
            return (
              <fieldset>
                <legend>{t('campaignForm.variant', { key })}</legend>
                {input(`${p}_weight`, t('campaignForm.weight', { key }), {
                  type: 'number',
                  min: 1,
                  max: 100,
                })}
                {input(`${p}_template`, t('campaignForm.templateId', { key }))}
                {FORM_FIELDS.map((n) => (
                  <>
                    {input(`${p}_key${n}`, t('campaignForm.fieldKey', { key, n }))}
                    {input(`${p}_value${n}`, t('campaignForm.fieldValue', { key, n }), {
                      maxlength: 40,
                    })}
                  </>
                ))}
                {input(`${p}_url`, t('campaignForm.url', { key }), { type: 'url' })}
                <section class="preview" aria-label={`${t('campaignForm.preview')} ${key}`}>
                  <strong>{t('campaignForm.preview')}</strong>
                  {FORM_FIELDS.map((n) => (
                    <div>
                      <span class="muted" data-mirror={`${p}_key${n}`}>
                        {f[`${p}_key${n}`] ?? ''}
                      </span>{' '}
                      <span data-mirror={`${p}_value${n}`}>{f[`${p}_value${n}`] ?? ''}</span>
                    </div>
                  ))}
                  <div class="muted">{t('campaignForm.previewLink')} ›</div>
                </section>
              </fieldset>
            )
          })}
        </section>
        <section class="card" aria-labelledby="cf-when">
          <h2 id="cf-when">{t('campaigns.schedule')}</h2>
          <Field id="cf-scheduleKind" label={t('campaignForm.scheduleKind')}>
            <select id="cf-scheduleKind" name="scheduleKind">
              {(['at', 'cron'] as const).map((k) => (
                <option value={k} selected={choice('scheduleKind', k)}>
                  {t(`campaignForm.kind.${k}`)}
                </option>
              ))}
            </select>
          </Field>
          {input('at', t('campaignForm.at', { zone }), { type: 'datetime-local' })}
          {input('cron', t('campaignForm.cronField', { zone }))}
          <p>
            {t('campaignForm.nextRuns', { zone })}：<span data-out="runs">{live.runs}</span>
          </p>
          {input('conversionDays', t('campaignForm.conversionDays'), {
            type: 'number',
            min: 1,
            max: 60,
          })}
          <p class="muted">
            {t('campaignForm.engine')}：
            {s?.capHours ? t('campaignForm.cap', { hours: s.capHours }) : t('campaignForm.noCap')}；
            {s?.quietHours
              ? t('campaignForm.quiet', {
                  from: hhmm(s.quietHours.from),
                  to: hhmm(s.quietHours.to),
                })
              : t('campaignForm.noQuiet')}
          </p>
        </section>
        <button type="submit">{page.submit}</button>
      </form>
    </>,
    error ? 400 : 200,
  )
}

/** The new-campaign form's page. */
const NEW = (t: ConsoleContext['var']['t']): CampaignFormPage => ({
  action: `/console${PATH}`,
  title: t('campaigns.new'),
  submit: t('campaignForm.submit'),
})

export const campaignNewPage: ConsolePage = {
  section: 'campaigns',
  path: PATH,
  mount(app, deps) {
    const show = (c: ConsoleContext, f: FormValues, error?: { field: string; reason: string }) =>
      showCampaignForm(c, deps, f, NEW(c.var.t), error)
    app.get(PATH, requireRole('owner', 'operator'), (c) => show(c, DEFAULT_VALUES))

    app.get(ESTIMATE, async (c) => {
      c.header('cache-control', 'no-store')
      return c.json(await estimate(c, deps, c.req.query()))
    })

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const f = formValues(await c.req.parseBody())
      const appid = accountOf(c)
      const read = readCampaignForm(f, deps.timeZone, c.var.t, deps.clock.now())
      if (!('input' in read)) return show(c, f, read)
      const actor = actorOf(c)
      const created = await createCampaign(deps, actor, { ...read.input, appid })
      return c.redirect(`/console/campaigns?created=${created.id}`, 303)
    })
  },
}
