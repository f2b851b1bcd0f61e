/**
 * The product form (create and edit): its fields as typed — prices in 元, the sale window as
 * wall-clock times in the community's time zone — read into the bodies the API's schemas
 * validate (`createProductInput`, `updateProductInput`), with their issues beside the fields.
 */
import type { BaseIssue } from 'valibot'
import type { Product } from '../../db/schema.js'
import { CsrfField, Field } from '../components/form.js'
import type { MessageKey, Translate } from '../i18n.js'
import { zonedInstant } from './campaign-form.js'
import { fenToYuan, yuanToFen } from './shop-kit.js'

/** What the form holds, as text. */
export interface ProductFormValues {
  sku: string
  kind: string
  name: string
  price: string
  stock: string
  /**
   * The stock the edit form showed: stock is sent only when the operator changed it, so saving
   * another field never writes back a stock that orders have lowered since.
   */
  stockShown: string
  perMemberLimit: string
  startsAt: string
  endsAt: string
  membershipDays: string
  groupSize: string
  groupMax: string
  groupHours: string
  enabled: boolean
}

type FieldName = keyof ProductFormValues

/** The problems of a submitted form, by field. */
export type ProductFormErrors = Partial<Record<FieldName, MessageKey>>

/** A new product's form. */
export const BLANK_PRODUCT: ProductFormValues = {
  sku: '',
  kind: 'flash_sale',
  name: '',
  price: '',
  stock: '',
  stockShown: '',
  perMemberLimit: '',
  startsAt: '',
  endsAt: '',
  membershipDays: '',
  groupSize: '',
  groupMax: '',
  groupHours: '',
  enabled: true,
}

/** The edit form's values for a product (`local` writes a time as `YYYY-MM-DDTHH:MM` locally). */
export function productValues(p: Product, local: (d: Date) => string): ProductFormValues {
  const n = (x: number | null) => (x === null ? '' : String(x))
  return {
    sku: p.sku,
    kind: p.kind,
    name: p.name,
    price: fenToYuan(p.price_fen),
    stock: n(p.stock),
    stockShown: n(p.stock),
    perMemberLimit: n(p.per_member_limit),
    startsAt: p.starts_at ? local(p.starts_at) : '',
    endsAt: p.ends_at ? local(p.ends_at) : '',
    membershipDays: n(p.membership_days),
    groupSize: n(p.group_size),
    groupMax: n(p.group_max),
    groupHours: n(p.group_hours),
    enabled: p.enabled,
  }
}

/** The submitted form's values. */
export function readProductForm(body: Record<string, unknown>): ProductFormValues {
  const text = (k: FieldName) => (typeof body[k] === 'string' ? (body[k] as string).trim() : '')
  return {
    sku: text('sku'),
    kind: text('kind'),
    name: text('name'),
    price: text('price'),
    stock: text('stock'),
    stockShown: text('stockShown'),
    perMemberLimit: text('perMemberLimit'),
    startsAt: text('startsAt'),
    endsAt: text('endsAt'),
    membershipDays: text('membershipDays'),
    groupSize: text('groupSize'),
    groupMax: text('groupMax'),
    groupHours: text('groupHours'),
    enabled: body.enabled !== undefined,
  }
}

/** Empty is none (null); anything else a number (NaN when it is not one: the schema refuses it). */
const nullable = (s: string) => (s === '' ? null : Number(s))
const optional = (s: string) => (s === '' ? undefined : Number(s))
/** A wall-clock time as ISO 8601, or the text itself when it is not one (the schema refuses it). */
const instant = (s: string, timeZone: string) =>
  s === '' ? null : (zonedInstant(s, timeZone)?.toISOString() ?? s)

/** The body `createProductInput` validates (kind-specific fields only for their kind). */
export function createProductBody(f: ProductFormValues, timeZone: string) {
  return {
    sku: f.sku,
    kind: f.kind,
    name: f.name,
    priceFen: yuanToFen(f.price),
    stock: nullable(f.stock),
    perMemberLimit: nullable(f.perMemberLimit),
    startsAt: instant(f.startsAt, timeZone),
    endsAt: instant(f.endsAt, timeZone),
    ...(f.kind === 'membership' ? { membershipDays: optional(f.membershipDays) } : {}),
    ...(f.kind === 'group_buy'
      ? {
          groupSize: optional(f.groupSize),
          groupMax: optional(f.groupMax),
          groupHours: optional(f.groupHours),
        }
      : {}),
  }
}

/** The body `updateProductInput` validates: the fields that differ from the product's values. */
export function updateProductBody(
  f: ProductFormValues,
  now: ProductFormValues,
  timeZone: string,
): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  if (f.name !== now.name) body.name = f.name
  if (f.price !== now.price && yuanToFen(f.price) !== yuanToFen(now.price))
    body.priceFen = yuanToFen(f.price)
  // Only a stock the operator changed: orders may have lowered it since the form was shown.
  if (f.stock !== f.stockShown) body.stock = nullable(f.stock)
  if (f.perMemberLimit !== now.perMemberLimit) body.perMemberLimit = nullable(f.perMemberLimit)
  if (f.startsAt !== now.startsAt) body.startsAt = instant(f.startsAt, timeZone)
  if (f.endsAt !== now.endsAt) body.endsAt = instant(f.endsAt, timeZone)
  if (f.enabled !== now.enabled) body.enabled = f.enabled
  return body
}

const FIELD_OF: Record<string, FieldName> = { priceFen: 'price' }

/** The schema's issues as the field each names (the first issue of a field wins). */
export function productFormErrors(issues: readonly BaseIssue<unknown>[]): ProductFormErrors {
  const errors: ProductFormErrors = {}
  for (const issue of issues) {
    const key = issue.path?.[0]?.key as string | undefined
    const field = key && (FIELD_OF[key] ?? (key as FieldName))
    if (field && !errors[field]) errors[field] = `shop.error.${field}` as MessageKey
  }
  return errors
}

type TextField = Exclude<FieldName, 'kind' | 'enabled' | 'stockShown'>

/** The create or edit form. */
export function ProductForm(p: {
  t: Translate
  action: string
  csrf: string
  values: ProductFormValues
  errors: ProductFormErrors
  timeZone: string
  /** Editing: the SKU, kind and kind-specific settings are fixed (the API changes only the rest). */
  edit?: boolean
}) {
  const { t, values: f, errors } = p
  const input = (
    field: TextField,
    o: { max: number; hint?: MessageKey; type?: string; required?: boolean; numeric?: boolean },
  ) => {
    const id = `product-${field}`
    const described =
      [o.hint && `${id}-hint`, errors[field] && `${id}-error`].filter(Boolean).join(' ') ||
      undefined
    return (
      <Field
        id={id}
        label={t(`shop.product.${field}`)}
        hint={o.hint && t(o.hint, { zone: p.timeZone })}
      >
        <input
          id={id}
          name={field}
          type={o.type ?? 'text'}
          value={f[field]}
          maxlength={o.type ? undefined : o.max}
          required={o.required}
          inputmode={o.numeric ? 'decimal' : undefined}
          autocomplete="off"
          aria-invalid={errors[field] ? 'true' : undefined}
          aria-describedby={described}
        />
        {errors[field] && (
          <span class="notice error" id={`${id}-error`}>
            {t(errors[field]!)}
          </span>
        )}
      </Field>
    )
  }
  return (
    <form method="post" action={p.action} class="stack" novalidate>
      <CsrfField token={p.csrf} />
      {!p.edit && input('sku', { max: 40, hint: 'shop.product.skuHint', required: true })}
      {!p.edit && (
        <Field id="product-kind" label={t('shop.product.kind')} hint={t('shop.product.kindHint')}>
          <select id="product-kind" name="kind" aria-describedby="product-kind-hint">
            {(['flash_sale', 'group_buy', 'membership'] as const).map((k) => (
              <option value={k} selected={f.kind === k}>
                {t(`shop.kind.${k}`)}
              </option>
            ))}
          </select>
          {errors.kind && (
            <span class="notice error" id="product-kind-error">
              {t(errors.kind)}
            </span>
          )}
        </Field>
      )}
      {input('name', { max: 127, required: true })}
      {input('price', { max: 12, hint: 'shop.product.priceHint', required: true, numeric: true })}
      {input('stock', { max: 9, hint: 'shop.product.stockHint', numeric: true })}
      {p.edit && <input type="hidden" name="stockShown" value={f.stockShown} />}
      {input('perMemberLimit', { max: 9, hint: 'shop.product.limitHint', numeric: true })}
      {input('startsAt', { max: 16, type: 'datetime-local', hint: 'shop.product.windowHint' })}
      {input('endsAt', { max: 16, type: 'datetime-local', hint: 'shop.product.windowHint' })}
      {!p.edit && (
        <fieldset>
          <legend>{t('shop.product.kindFields')}</legend>
          {input('membershipDays', { max: 4, hint: 'shop.product.membershipHint', numeric: true })}
          {input('groupSize', { max: 2, hint: 'shop.product.groupHint', numeric: true })}
          {input('groupMax', { max: 3, hint: 'shop.product.groupHint', numeric: true })}
          {input('groupHours', { max: 3, hint: 'shop.product.groupHint', numeric: true })}
        </fieldset>
      )}
      {p.edit && (
        <label>
          <input type="checkbox" name="enabled" value="1" checked={f.enabled} />{' '}
          {t('shop.product.enabled')}
        </label>
      )}
      <button type="submit">{p.edit ? t('common.save') : t('shop.product.create')}</button>
    </form>
  )
}
