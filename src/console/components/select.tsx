import { Field } from './form.js'

/** A select of (value, label) options with one selected; label it with `Field` (same `id`). */
export function Select(p: {
  id: string
  name: string
  value: string
  options: [string, string][]
}) {
  return (
    <select id={p.id} name={p.name}>
      {p.options.map(([value, label]) => (
        <option value={value} selected={value === p.value}>
          {label}
        </option>
      ))}
    </select>
  )
}

/** A labelled select (`Field` around `Select`). */
export function SelectField(p: {
  id: string
  name: string
  label: string
  value: string
  options: [string, string][]
}) {
  return (
    <Field id={p.id} label={p.label}>
      <Select id={p.id} name={p.name} value={p.value} options={p.options} />
    </Field>
  )
}
