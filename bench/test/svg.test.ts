import assert from 'node:assert/strict';
import { test } from 'node:test';
import { niceTicks, renderLineChart } from '../src/svg.ts';

test('niceTicks uses 1/2/5 steps covering the range', () => {
  assert.deepEqual(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 47, 5), [10, 20, 30, 40]);
  assert.deepEqual(niceTicks(5, 5, 4), [5]);
});

test('renderLineChart: one polyline per series, escaped labels, a step CDF', () => {
  const svg = renderLineChart({
    title: 'TTFT <ms> & more',
    xLabel: 'ms',
    yLabel: 'fraction',
    series: [
      {
        name: 'a',
        points: [
          [1, 0.5],
          [2, 1],
        ],
      },
      { name: 'b&c', points: [[3, 1]] },
      { name: 'empty', points: [] },
    ],
    step: true,
    markers: false,
    width: 600,
    height: 300,
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal(svg.match(/<polyline /g)?.length, 2);
  assert.ok(svg.includes('TTFT &lt;ms&gt; &amp; more') && svg.includes('b&amp;c'));
  assert.ok(!/NaN|Infinity/.test(svg));
  // A step CDF of 2 points: rise from 0 at x=1, flat to x=2, rise to 1: 4 vertices.
  const first = svg.match(/<polyline [^>]*points="([^"]+)"/)?.[1] ?? '';
  assert.equal(first.split(' ').length, 4);
});
