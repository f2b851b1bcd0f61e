/**
 * A table that becomes cards on phones: every cell carries its column's label (`data-label`),
 * which the stylesheet shows beside the value below 720 px.
 */
import type { Child } from 'hono/jsx'

export interface Column<R> {
  label: string
  /** Right-aligned, tabular figures. */
  num?: boolean
  cell(row: R): Child
}

/** Rows under labelled columns, or `empty` when there are none. */
export function DataTable<R>(p: {
  caption?: string
  columns: Column<R>[]
  rows: R[]
  empty: string
}) {
  if (p.rows.length === 0) return <p class="empty">{p.empty}</p>
  return (
    <table class="data">
      {p.caption && <caption class="muted">{p.caption}</caption>}
      <thead>
        <tr>
          {p.columns.map((col) => (
            <th scope="col" class={col.num ? 'num' : undefined}>
              {col.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {p.rows.map((row) => (
          <tr>
            {p.columns.map((col) => (
              <td data-label={col.label} class={col.num ? 'num' : undefined}>
                {col.cell(row)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  )
}
