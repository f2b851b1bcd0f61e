/**
 * The activity form (create and edit): its fields as the operator typed them, read into the input
 * the API's schemas (`createActivityInput`, `updateActivityInput`) validate, and the schema's
 * issues shown beside the fields they name.
 */
import type { BaseIssue } from 'valibot'
import type { Activity } from '../../admin/actions/activity-actions.js'
import { CsrfField, Field } from '../components/form.js'
import type { MessageKey, Translate } from '../i18n.js'

/** What the form holds, as text. */
export interface ActivityFormValues {
  key: string
  name: string
  description: string
  cron: string
  cadence: string
  points: string
  capacity: string
  signup: boolean
  requiresPurchase: boolean
  status: string
}

type FieldName = keyof ActivityFormValues

/** The problems of a submitted form, by field. */
export type FormErrors = Partial<Record<FieldName, MessageKey>>

/** An empty form, as a new activity starts. */
export const BLANK: ActivityFormValues = {
  key: '',
  name: '',
  description: '',
  cron: '0 20 * * 3',
  cadence: 'weekly',
  points: '10',
  capacity: '',
  signup: true,
  requiresPurchase: false,
  status: 'open',
}

/** The form's values for an activity (the edit form). */
export function valuesOf(a: Activity): ActivityFormValues {
  return {
    key: a.key,
    name: a.name,
    description: a.description,
    cron: a.cron,
    cadence: a.cadence,
    points: String(a.points),
    capacity: a.capacity === null ? '' : String(a.capacity),
    signup: a.signup,
    requiresPurchase: a.requires_purchase,
    status: a.status,
  }
}

/** The submitted form's values (a checkbox is on when sent). */
export function readForm(body: Record<string, unknown>): ActivityFormValues {
  const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string).trim() : '')
  return {
    key: text('key'),
    name: text('name'),
    description: text('description'),
    cron: text('cron').replace(/\s+/g, ' '),
    cadence: text('cadence'),
    points: text('points'),
    capacity: text('capacity'),
    signup: body.signup !== undefined,
    requiresPurchase: body.requiresPurchase !== undefined,
    status: text('status'),
  }
}

/** A number field: empty is absent; anything not a number stays NaN (the schema refuses it). */
const number = (s: string) => (s === '' ? undefined : Number(s))

/** The body `createActivityInput` validates. */
export function createBody(f: ActivityFormValues) {
  return {
    key: f.key,
    name: f.name,
    description: f.description,
    cron: f.cron,
    cadence: f.cadence,
    points: number(f.points),
    capacity: f.capacity === '' ? null : Number(f.capacity),
    signup: f.signup,
    requiresPurchase: f.requiresPurchase,
  }
}

/** The body `updateActivityInput` validates: the fields that differ from the activity. */
export function updateBody(f: ActivityFormValues, a: Activity) {
  const body: Record<string, unknown> = {}
  const now = valuesOf(a)
  for (const k of ['name', 'description', 'cron', 'status'] as const)
    if (f[k] !== now[k]) body[k] = f[k]
  if (f.points !== now.points) body.points = f.points === '' ? Number.NaN : Number(f.points)
  if (f.capacity !== now.capacity) body.capacity = f.capacity === '' ? null : Number(f.capacity)
  return body
}

/** The schema's issues as the field each names (the first issue of a field wins). */
export function formErrors(issues: readonly BaseIssue<unknown>[]): FormErrors {
  const errors: FormErrors = {}
  for (const issue of issues) {
    const field = issue.path?.[0]?.key as FieldName | undefined
    if (field && !errors[field]) errors[field] = `activities.error.${field}` as MessageKey
  }
  return errors
}

/** The create or edit form. */
export function ActivityForm(p: {
  t: Translate
  action: string
  csrf: string
  values: ActivityFormValues
  errors: FormErrors
  /** Editing: the key, cadence and sign-up settings are fixed (the API changes only the rest). */
  edit?: boolean
  /** The points are shown, not offered: an operator with a grant limit may not set them. */
  pointsFixed?: boolean
}) {
  const { t, values: f, errors } = p
  const described = (id: string, field: FieldName, hint?: boolean) =>
    [hint && `${id}-hint`, errors[field] && `${id}-error`].filter(Boolean).join(' ') || undefined
  const problem = (id: string, field: FieldName) =>
    errors[field] && (
      <span class="notice error" id={`${id}-error`}>
        {t(errors[field]!)}
      </span>
    )
  type TextField = 'key' | 'name' | 'description' | 'cron' | 'points' | 'capacity'
  const text = (field: TextField, max: number, hint?: MessageKey) => {
    const id = `activity-${field}`
    const numeric = field === 'points' || field === 'capacity'
    return (
      <Field id={id} label={t(`activities.${field}`)} hint={hint && t(hint)}>
        <input
          id={id}
          name={field}
          value={f[field]}
          readonly={field === 'points' && p.pointsFixed ? true : undefined}
          maxlength={max}
          required={field !== 'description' && field !== 'capacity'}
          inputmode={numeric ? 'numeric' : undefined}
          autocomplete="off"
          aria-invalid={errors[field] ? 'true' : undefined}
          aria-describedby={described(id, field, Boolean(hint))}
        />
        {problem(id, field)}
      </Field>
    )
  }
  return (
    <form method="post" action={p.action} class="stack" novalidate>
      <CsrfField token={p.csrf} />
      {/* the points as shown: left as they were, they change nothing saved meanwhile */}
      {p.edit && <input type="hidden" name="pointsShown" value={f.points} />}
      {!p.edit && text('key', 20, 'activities.keyHint')}
      {text('name', 40)}
      {text('description', 200)}
      {text('cron', 100, 'activities.cronHint')}
      {!p.edit && (
        <Field
          id="activity-cadence"
          label={t('activities.cadence')}
          hint={t('activities.cadenceHint')}
        >
          <select
            id="activity-cadence"
            name="cadence"
            aria-describedby={described('activity-cadence', 'cadence', true)}
          >
            {(['daily', 'weekly', 'monthly'] as const).map((c) => (
              <option value={c} selected={f.cadence === c}>
                {t(`activities.cadence.${c}`)}
              </option>
            ))}
          </select>
          {problem('activity-cadence', 'cadence')}
        </Field>
      )}
      {text('points', 6, p.pointsFixed ? 'error.limited' : undefined)}
      {text('capacity', 9, 'activities.capacityHint')}
      {!p.edit && (
        <>
          <label>
            <input type="checkbox" name="signup" value="1" checked={f.signup} />{' '}
            {t('activities.signup')}
          </label>
          <label>
            <input type="checkbox" name="requiresPurchase" value="1" checked={f.requiresPurchase} />{' '}
            {t('activities.requiresPurchase')}
          </label>
        </>
      )}
      {p.edit && (
        <Field id="activity-status" label={t('activities.status')}>
          <select id="activity-status" name="status">
            {(['open', 'closed'] as const).map((s) => (
              <option value={s} selected={f.status === s}>
                {t(`activities.status.${s}`)}
              </option>
            ))}
          </select>
          {problem('activity-status', 'status')}
        </Field>
      )}
      <button type="submit">{p.edit ? t('common.save') : t('activities.new')}</button>
    </form>
  )
}
