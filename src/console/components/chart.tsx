/**
 * An ECharts chart drawn by console.js from the option embedded as JSON beside it (no inline
 * script runs). `<` is escaped so no value can close the script element.
 */
import { raw } from 'hono/html'

/** A line chart's option: categories on x, one or more named series. */
export interface ChartProps {
  id: string
  /** What the chart shows, for screen readers. */
  label: string
  option: Record<string, unknown>
  /** Formats the y axis (the first, left one of two) as percentages (values are ratios). */
  percent?: boolean
  /** The box's height in px (default: the stylesheet's 280 px, 240 px on phones). */
  height?: number
}

/** A chart box and its data. */
export function Chart(p: ChartProps) {
  const json = JSON.stringify(p.option).replaceAll('<', '\\u003c')
  return (
    <>
      <div
        class="chart"
        role="img"
        aria-label={p.label}
        data-chart={p.id}
        data-percent={p.percent ? '1' : undefined}
        style={p.height ? `height:${p.height}px` : undefined}
      />
      <script type="application/json" id={p.id}>
        {raw(json)}
      </script>
    </>
  )
}

/** The option for a line chart over `x` with named series; `extra` is merged in. */
export function lineOption(
  x: (string | number)[],
  series: { name: string; data: (number | null)[]; dashed?: boolean; area?: boolean }[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: x, boundaryGap: false },
    yAxis: { type: 'value' },
    series: series.map((s) => ({
      name: s.name,
      type: 'line',
      data: s.data,
      showSymbol: false,
      smooth: false,
      ...(s.dashed ? { lineStyle: { type: 'dashed' } } : {}),
      ...(s.area ? { areaStyle: { opacity: 0.15 } } : {}),
    })),
    ...extra,
  }
}
