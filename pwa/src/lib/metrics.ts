// Timings the browser tests and scripts read (window.__hongyiMetrics): decode time per frame and
// scan-to-feedback time. Kept small: the last 200 samples of each.
export interface Metrics { decodeMs: number[]; feedbackMs: number[]; engine?: string }

export const metrics: Metrics = { decodeMs: [], feedbackMs: [] }
;(globalThis as unknown as { __hongyiMetrics: Metrics }).__hongyiMetrics = metrics

export function record(list: number[], value: number): void {
  list.push(Math.round(value * 100) / 100)
  if (list.length > 200) list.shift()
}
