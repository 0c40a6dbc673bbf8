// Small statistics for benchmark reports: medians and per-pair ratios, so
// noise on a shared machine hits both sides of a comparison alike.
import { median, percentile } from '../../test/harness/index.js';

export { median, percentile };

export interface PairSummary {
  ours: { median: number; p90: number };
  baseline: { median: number; p90: number };
  /** Median of per-pair ratios ours/baseline. */
  ratio: number;
  pairs: number;
}

export function summarizePairs(ours: number[], baseline: number[]): PairSummary {
  const ratios = ours.map((v, i) => v / baseline[i]);
  return {
    ours: { median: median(ours), p90: percentile(ours, 90) },
    baseline: { median: median(baseline), p90: percentile(baseline, 90) },
    ratio: median(ratios),
    pairs: ours.length,
  };
}

export function ms(nanos: bigint): number {
  return Number(nanos) / 1e6;
}
