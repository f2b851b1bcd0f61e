/**
 * Chart options for the console's analytics sections beyond lines (chart.tsx): a heat map (cohort
 * triangles), bars, a Sankey (segment moves) and a funnel (invites). Plain data in, ECharts option
 * out — JSON only, no functions, as the Chart component embeds it.
 */

/** A heat map: `cells` are `[x index, y index, value]`; colours run from 0 to `max`. */
export function heatmapOption(p: {
  x: string[]
  y: string[]
  cells: [number, number, number][]
  max: number
  /** The colour scale's two ends, high first (e.g. `['高', '低']`). */
  ends: [string, string]
}): Record<string, unknown> {
  return {
    animation: false,
    tooltip: { position: 'top' },
    grid: { left: 8, right: 8, top: 8, bottom: 48, containLabel: true },
    xAxis: { type: 'category', data: p.x, splitArea: { show: true } },
    yAxis: { type: 'category', data: p.y, inverse: true, splitArea: { show: true } },
    visualMap: {
      min: 0,
      max: p.max > 0 ? p.max : 1,
      calculable: true,
      orient: 'horizontal',
      left: 'center',
      bottom: 0,
      itemHeight: 120,
      text: p.ends,
      inRange: { color: ['#f3faf6', '#7fd1a3', '#07a35a', '#045c33'] },
    },
    series: [{ type: 'heatmap', data: p.cells, emphasis: { itemStyle: { borderColor: '#333' } } }],
  }
}

/** Bars over categories. */
export function barOption(x: string[], name: string, data: number[]): Record<string, unknown> {
  return {
    animation: false,
    tooltip: { trigger: 'axis' },
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: x, axisLabel: { interval: 0 } },
    yAxis: { type: 'value' },
    series: [{ name, type: 'bar', data, barMaxWidth: 40, itemStyle: { color: '#07a35a' } }],
  }
}

/**
 * A Sankey of flows between two columns of nodes. ECharts refuses a cycle (a→b and b→a), so the
 * sources and targets are separate nodes: `fromName(x)` on the left, `toName(y)` on the right,
 * which makes any set of moves a two-column DAG.
 */
export function sankeyOption(
  moves: { from: string; to: string; members: number }[],
  fromName: (segment: string) => string,
  toName: (segment: string) => string,
): Record<string, unknown> {
  const names = [
    ...new Set([...moves.map((m) => fromName(m.from)), ...moves.map((m) => toName(m.to))]),
  ]
  return {
    animation: false,
    tooltip: { trigger: 'item' },
    series: [
      {
        type: 'sankey',
        left: 8,
        right: 96,
        top: 8,
        bottom: 8,
        nodeAlign: 'justify',
        emphasis: { focus: 'adjacency' },
        lineStyle: { color: 'gradient', opacity: 0.4 },
        data: names.map((name) => ({ name })),
        links: moves.map((m) => ({
          source: fromName(m.from),
          target: toName(m.to),
          value: m.members,
        })),
      },
    ],
  }
}

/** A funnel whose stages keep their order (a later stage may be larger than the one before). */
export function funnelOption(stages: { name: string; value: number }[]): Record<string, unknown> {
  return {
    animation: false,
    tooltip: { trigger: 'item', formatter: '{b}: {c}' },
    series: [
      {
        type: 'funnel',
        sort: 'none',
        left: '5%',
        width: '90%',
        top: 8,
        bottom: 8,
        minSize: '8%',
        gap: 2,
        label: { show: true, position: 'inside', formatter: '{b}\n{c}' },
        data: stages,
      },
    ],
  }
}
