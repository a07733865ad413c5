import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { GrammarCompiler } from '../src/compiler.ts';
import { decimalOf } from '../src/number-range.ts';
import { accepts, loadVocabulary, randomWalk, seededRandom } from './helpers.ts';

interface Bounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

const boundSets: Bounds[] = [
  { minimum: 0, maximum: 1 },
  { exclusiveMinimum: 0, exclusiveMaximum: 1 },
  { minimum: -5.5, maximum: 10.25 },
  { exclusiveMinimum: -5.5, exclusiveMaximum: 10.25 },
  { minimum: 0.1 },
  { exclusiveMaximum: -0.001 },
  { minimum: -100, exclusiveMaximum: -3 },
  { minimum: 99.99, maximum: 100.01 },
  { exclusiveMinimum: 0.3, maximum: 0.30001 },
  { minimum: 1e-7, maximum: 2e-7 },
  { minimum: 123456, maximum: 1234567 },
  { exclusiveMinimum: -1, exclusiveMaximum: 1 },
  { minimum: 7, maximum: 7 },
  { minimum: 2.5, maximum: 3.5 },
];

function within(value: number, b: Bounds): boolean {
  return (
    (b.minimum === undefined || value >= b.minimum) &&
    (b.maximum === undefined || value <= b.maximum) &&
    (b.exclusiveMinimum === undefined || value > b.exclusiveMinimum) &&
    (b.exclusiveMaximum === undefined || value < b.exclusiveMaximum)
  );
}

const jsonNumber = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const jsonInteger = /^-?(0|[1-9][0-9]*)$/;

/** Candidate texts near the bounds and at random, some malformed. */
function candidates(b: Bounds, random: () => number): string[] {
  const anchors = Object.values(b) as number[];
  const out = ['0', '-0', '1', '-1', '00', '1.', '.5', '1e3', '-', '0.0', '10', '-10'];
  for (const anchor of anchors) {
    for (const delta of [0, 1e-9, 1e-4, 0.01, 0.5, 1, 10]) {
      for (const v of [anchor + delta, anchor - delta]) {
        out.push(
          String(v),
          v.toFixed(2),
          v.toFixed(6),
          v.toFixed(9),
          String(Math.round(v)),
          `${v.toFixed(3)}0`,
        );
      }
    }
  }
  for (let i = 0; i < 300; i++) {
    const scale = 10 ** Math.floor(random() * 8 - 3);
    const v = (random() * 2 - 1) * scale;
    out.push(String(v), v.toFixed(Math.floor(random() * 8)));
  }
  return out;
}

describe('number bounds', () => {
  let compiler: GrammarCompiler;
  before(async () => {
    compiler = new GrammarCompiler(await loadVocabulary('demo'));
  });

  for (const bounds of boundSets) {
    for (const type of ['number', 'integer'] as const) {
      it(`${type} ${JSON.stringify(bounds)}: accepts a text iff it is a ${type} within the bounds`, () => {
        const lowest = Math.max(bounds.minimum ?? -1e15, (bounds.exclusiveMinimum ?? -1e15) + 1e-9);
        const highest = Math.min(bounds.maximum ?? 1e15, (bounds.exclusiveMaximum ?? 1e15) - 1e-9);
        if (type === 'integer' && Math.ceil(lowest) > Math.floor(highest)) {
          assert.throws(
            () => compiler.compile({ type: 'json_schema', schema: { type, ...bounds } }),
            /no integer/,
          );
          return;
        }
        const grammar = compiler.compile({ type: 'json_schema', schema: { type, ...bounds } });
        const random = seededRandom(3);
        let numAccepted = 0;
        for (const text of candidates(bounds, random)) {
          const digits = text.replace(/[-.]/g, '').length;
          const wellFormed = (type === 'integer' ? jsonInteger : jsonNumber).test(text) && text !== '-0';
          const expected = wellFormed && digits <= 15 && within(Number(text), bounds);
          // Outputs never have "-0" or more than 15 digits; everything else must match exactly.
          const negativeZero = text.startsWith('-') && Number(text) === 0;
          if (negativeZero || (wellFormed && digits > 15)) continue;
          assert.equal(
            accepts(() => grammar.newMatcher(), text),
            expected,
            text,
          );
          if (expected) numAccepted++;
        }
        assert.ok(numAccepted > 0, 'some candidates lie within the bounds');
        const vocabulary = grammar.vocabulary;
        for (let i = 0; i < 20; i++) {
          const walk = randomWalk(grammar.newMatcher(), vocabulary, random, { freeSteps: 6 });
          assert.ok(walk.completed);
          const value = JSON.parse(walk.text) as number;
          assert.ok(within(value, bounds), `${walk.text} is outside ${JSON.stringify(bounds)}`);
          if (type === 'integer') assert.ok(Number.isInteger(value));
        }
      });
    }
  }

  it('refuses bounds no number satisfies, naming the bound', () => {
    assert.throws(
      () =>
        compiler.compile({
          type: 'json_schema',
          schema: { type: 'integer', minimum: 1.2, maximum: 1.8 },
          param: 'p',
        }),
      (error: Error & { param?: string }) => error.param === 'p.maximum',
    );
  });

  it('reads a double as the exact decimal of its shortest text', () => {
    assert.deepEqual(decimalOf(0.1), { int: 0n, frac: '1' });
    assert.deepEqual(decimalOf(-12.5), { int: 12n, frac: '5' });
    assert.deepEqual(decimalOf(1e-7), { int: 0n, frac: '0000001' });
    assert.deepEqual(decimalOf(1.5e21), { int: 1500000000000000000000n, frac: '' });
    assert.deepEqual(decimalOf(0), { int: 0n, frac: '' });
  });
});
