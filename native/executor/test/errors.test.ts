// Broken checkpoints and bad batches reject with named errors that say what is wrong, and the
// process (and the executor) survive.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AddonMissingError,
  CheckpointError,
  DeviceError,
  defaultSampling,
  Executor,
  ExecutorClosedError,
  InvalidBatchError,
  isAddonBuilt,
  ModelConfigError,
  readSafetensorsHeader,
  type TensorToWrite,
  writeSafetensors,
} from '../src/index.ts';
import { loadFixtures, pageRange, seqInput } from './helpers.ts';

const good = loadFixtures().find((f) => f.name === 'tiny-llama');
assert.ok(good);
const goodDir = good.dir;
let scratch: string;

/** A copy of tiny-llama whose tensors pass through `edit` (drop one, change a shape). */
function brokenCheckpoint(name: string, edit: (tensors: TensorToWrite[]) => TensorToWrite[]): string {
  const dir = join(scratch, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  copyFileSync(join(goodDir, 'config.json'), join(dir, 'config.json'));
  const file = join(goodDir, 'model.safetensors');
  const { tensors, dataStart } = readSafetensorsHeader(file);
  const bytes = readFileSync(file);
  const list: TensorToWrite[] = Object.entries(tensors).map(([tensorName, t]) => ({
    name: tensorName,
    dtype: t.dtype,
    shape: t.shape,
    bytes: bytes.subarray(dataStart + t.data_offsets[0], dataStart + t.data_offsets[1]),
    numBytes: t.data_offsets[1] - t.data_offsets[0],
  }));
  writeSafetensors(join(dir, 'model.safetensors'), edit(list));
  return dir;
}

async function assertStillWorks(): Promise<void> {
  await using ex = await Executor.open({ modelDir: goodDir, pageSize: 16, numPages: 4 });
  const [out] = await ex.forward([
    seqInput({ tokenIds: Int32Array.of(5, 9, 13), pageTable: pageRange(0, 1) }),
  ]);
  assert.equal(typeof out?.samples[0]?.tokenId, 'number');
}

describe('broken checkpoints', () => {
  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'tandem-executor-errors-'));
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  test('missing tensor', async () => {
    const dir = brokenCheckpoint('missing', (ts) =>
      ts.filter((t) => t.name !== 'model.layers.1.mlp.down_proj.weight'),
    );
    await assert.rejects(Executor.open({ modelDir: dir }), (err: unknown) => {
      assert.ok(err instanceof CheckpointError, String(err));
      assert.equal(err.reason, 'checkpoint_invalid');
      assert.match(err.message, /model\.layers\.1\.mlp\.down_proj\.weight.*missing/);
      return true;
    });
    await assertStillWorks();
  });

  test('wrong shape', async () => {
    const dir = brokenCheckpoint('shape', (ts) =>
      ts.map((t) =>
        t.name === 'model.layers.0.mlp.gate_proj.weight' ? { ...t, shape: [...t.shape].reverse() } : t,
      ),
    );
    await assert.rejects(Executor.open({ modelDir: dir }), (err: unknown) => {
      assert.ok(err instanceof CheckpointError, String(err));
      assert.match(err.message, /gate_proj\.weight" has shape \[64, 160\], expected \[160, 64\]/);
      return true;
    });
    await assertStillWorks();
  });

  test('unknown architecture', async () => {
    const dir = brokenCheckpoint('arch', (ts) => ts);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    config.architectures = ['GPT2LMHeadModel'];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    await assert.rejects(Executor.open({ modelDir: dir }), (err: unknown) => {
      assert.ok(err instanceof ModelConfigError, String(err));
      assert.equal(err.reason, 'model_config_invalid');
      assert.match(err.message, /unsupported architecture "GPT2LMHeadModel"/);
      return true;
    });
    await assertStillWorks();
  });

  test('truncated file', async () => {
    const dir = brokenCheckpoint('truncated', (ts) => ts);
    const file = join(dir, 'model.safetensors');
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await assert.rejects(Executor.open({ modelDir: dir }), (err: unknown) => {
      assert.ok(err instanceof CheckpointError, String(err));
      assert.match(err.message, /truncated/);
      return true;
    });
    await assertStillWorks();
  });

  test('missing config.json and missing weights', async () => {
    await assert.rejects(Executor.open({ modelDir: join(scratch, 'nothing-here') }), ModelConfigError);
    const dir = join(scratch, 'no-weights');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(goodDir, 'config.json'), join(dir, 'config.json'));
    await assert.rejects(Executor.open({ modelDir: dir }), (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.match(err.message, /no model\.safetensors/);
      return true;
    });
  });

  test('sharded checkpoint via model.safetensors.index.json loads the same model', async () => {
    const dir = join(scratch, 'sharded');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(goodDir, 'config.json'), join(dir, 'config.json'));
    const file = join(goodDir, 'model.safetensors');
    const { tensors, dataStart } = readSafetensorsHeader(file);
    const bytes = readFileSync(file);
    const all: TensorToWrite[] = Object.entries(tensors).map(([name, t]) => ({
      name,
      dtype: t.dtype,
      shape: t.shape,
      bytes: bytes.subarray(dataStart + t.data_offsets[0], dataStart + t.data_offsets[1]),
      numBytes: t.data_offsets[1] - t.data_offsets[0],
    }));
    const half = Math.floor(all.length / 2);
    const shards = {
      'model-00001-of-00002.safetensors': all.slice(0, half),
      'model-00002-of-00002.safetensors': all.slice(half),
    };
    const weightMap: Record<string, string> = {};
    for (const [shard, list] of Object.entries(shards)) {
      writeSafetensors(join(dir, shard), list);
      for (const t of list) weightMap[t.name] = shard;
    }
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    await using sharded = await Executor.open({ modelDir: dir, pageSize: 16, numPages: 4 });
    await using single = await Executor.open({ modelDir: goodDir, pageSize: 16, numPages: 4 });
    const input = seqInput({
      tokenIds: Int32Array.of(5, 9, 13, 4),
      pageTable: pageRange(0, 1),
      returnLogits: true,
    });
    const [a] = await sharded.forward([input]);
    const [b] = await single.forward([input]);
    assert.deepEqual(a?.samples[0]?.logits, b?.samples[0]?.logits);
  });
});

describe('devices', () => {
  test('cuda opens on a GPU; without the CUDA addon or a GPU it says so plainly', async () => {
    const opening = Executor.open({ modelDir: goodDir, device: 'cuda:0', pageSize: 16, numPages: 8 });
    if (!isAddonBuilt('cuda')) {
      await assert.rejects(opening, (error) => {
        assert.ok(error instanceof AddonMissingError);
        assert.match(error.message, /CUDA addon.*TANDEM_WITH_CUDA=ON/);
        return true;
      });
      return;
    }
    if (visibleGpuCount() > 0) {
      const ex = await opening;
      try {
        assert.equal(ex.kvLayout.device, 'cuda:0');
      } finally {
        await ex.close();
      }
      return;
    }
    await assert.rejects(opening, (error) => {
      assert.ok(error instanceof DeviceError, String(error));
      return true;
    });
  });

  test('device auto takes the GPU where CUDA is usable and falls back to the CPU elsewhere', async () => {
    const ex = await Executor.open({ modelDir: goodDir, device: 'auto', pageSize: 16, numPages: 8 });
    try {
      const expected = isAddonBuilt('cuda') && visibleGpuCount() > 0 ? 'cuda:0' : 'cpu';
      assert.equal(ex.kvLayout.device, expected);
    } finally {
      await ex.close();
    }
  });
});

/** GPUs the driver lists (0 without a driver); CUDA_VISIBLE_DEVICES narrows them. */
function visibleGpuCount(): number {
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined)
    return visible.split(',').filter((d) => d.trim() !== '' && d.trim() !== '-1').length;
  try {
    return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.startsWith('GPU ')).length;
  } catch {
    return 0;
  }
}

describe('bad batches', () => {
  let ex: Executor;
  before(async () => {
    ex = await Executor.open({ modelDir: goodDir, pageSize: 4, numPages: 8 });
  });
  after(async () => {
    await ex.close();
  });

  const cases: [string, Parameters<typeof seqInput>[0], RegExp][] = [
    [
      'page id out of range',
      { tokenIds: Int32Array.of(1, 2), pageTable: Int32Array.of(8) },
      /page id 8 is outside the pool/,
    ],
    [
      'page table too short',
      { tokenIds: Int32Array.of(1, 2, 3, 4, 5), pageTable: Int32Array.of(0) },
      /pageTable has 1 pages/,
    ],
    [
      'token id outside the vocabulary',
      { tokenIds: Int32Array.of(1, 512), pageTable: Int32Array.of(0) },
      /token id 512/,
    ],
    ['negative token id', { tokenIds: Int32Array.of(-1), pageTable: Int32Array.of(0) }, /token id -1/],
    [
      'position past max_position_embeddings',
      { tokenIds: Int32Array.of(1), startPos: 4096, pageTable: pageRange(0, 8) },
      /exceed max_position_embeddings/,
    ],
    [
      'sample index outside tokenIds',
      { tokenIds: Int32Array.of(1), pageTable: Int32Array.of(0), sampleIndices: Int32Array.of(3) },
      /sample index 3/,
    ],
    ['empty tokenIds', { tokenIds: new Int32Array(0), pageTable: Int32Array.of(0) }, /tokenIds is empty/],
    [
      'allowedTokenMask shorter than the vocabulary',
      {
        tokenIds: Int32Array.of(1),
        pageTable: Int32Array.of(0),
        sampling: { ...defaultSampling(), allowedTokenMask: new Uint32Array(3).fill(~0) },
      },
      /allowedTokenMask has 3 words, the vocabulary needs 16/,
    ],
    [
      'allowedTokenMask allowing nothing',
      {
        tokenIds: Int32Array.of(1),
        pageTable: Int32Array.of(0),
        sampling: { ...defaultSampling(), allowedTokenMask: new Uint32Array(17).fill(0) },
      },
      /allowedTokenMask allows no token/,
    ],
    [
      'allowedTokenMask and allowedTokenIds with nothing in common',
      {
        tokenIds: Int32Array.of(1),
        pageTable: Int32Array.of(0),
        sampling: {
          ...defaultSampling(),
          allowedTokenIds: Int32Array.of(1, 2),
          allowedTokenMask: Uint32Array.from({ length: 16 }, (_, w) => (w === 0 ? 1 : 0)),
        },
      },
      /allowedTokenMask allows no token/,
    ],
  ];
  for (const [name, input, message] of cases) {
    test(name, async () => {
      await assert.rejects(ex.forward([seqInput(input)]), (err: unknown) => {
        assert.ok(err instanceof InvalidBatchError, String(err));
        assert.match(err.message, message);
        return true;
      });
      const [out] = await ex.forward([
        seqInput({ tokenIds: Int32Array.of(5, 9), pageTable: Int32Array.of(0) }),
      ]);
      assert.equal(typeof out?.samples[0]?.tokenId, 'number');
    });
  }

  test('a typed-array field of the wrong type', async () => {
    const bad = {
      ...seqInput({ tokenIds: Int32Array.of(1), pageTable: Int32Array.of(0) }),
      pageTable: [0] as unknown as Int32Array,
    };
    await assert.rejects(ex.forward([bad]), InvalidBatchError);
  });

  test('close is idempotent and later calls reject', async () => {
    const other = await Executor.open({ modelDir: goodDir, pageSize: 16, numPages: 2 });
    const pending = other.forward([
      seqInput({ tokenIds: Int32Array.of(1, 2, 3), pageTable: Int32Array.of(0) }),
    ]);
    await other.close();
    await other.close();
    assert.equal((await pending)[0]?.samples.length, 1); // queued work finishes before close
    await assert.rejects(
      other.forward([seqInput({ tokenIds: Int32Array.of(1), pageTable: Int32Array.of(0) })]),
      ExecutorClosedError,
    );
  });
});

describe('config variants', () => {
  let scratchDir: string;
  before(() => {
    scratchDir = mkdtempSync(join(tmpdir(), 'tandem-executor-config-'));
  });
  after(() => {
    rmSync(scratchDir, { recursive: true, force: true });
  });

  /** tiny-llama's weights under an edited config.json. */
  function withConfig(name: string, edit: (config: Record<string, unknown>) => void): string {
    const dir = join(scratchDir, name);
    mkdirSync(dir);
    copyFileSync(join(goodDir, 'model.safetensors'), join(dir, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(goodDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    edit(config);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  }

  test('Mistral (same tensors as Llama) computes the same logits; its sliding window caps positions', async () => {
    const dir = withConfig('mistral', (c) => {
      c.architectures = ['MistralForCausalLM'];
      c.model_type = 'mistral';
      c.sliding_window = 512;
    });
    await using mistral = await Executor.open({ modelDir: dir, pageSize: 16, numPages: 4 });
    await using llama = await Executor.open({ modelDir: goodDir, pageSize: 16, numPages: 4 });
    assert.equal(mistral.info.maxPositionEmbeddings, 512);
    const input = seqInput({
      tokenIds: Int32Array.of(5, 9, 13, 4),
      pageTable: pageRange(0, 1),
      returnLogits: true,
    });
    const [a] = await mistral.forward([input]);
    const [b] = await llama.forward([input]);
    assert.deepEqual(a?.samples[0]?.logits, b?.samples[0]?.logits);
  });

  test('the classic rope_theta form equals rope_parameters', async () => {
    const dir = withConfig('classic', (c) => {
      const params = c.rope_parameters as { rope_theta: number };
      c.rope_theta = params.rope_theta;
      delete c.rope_parameters;
    });
    await using classic = await Executor.open({ modelDir: dir, pageSize: 16, numPages: 4 });
    await using newer = await Executor.open({ modelDir: goodDir, pageSize: 16, numPages: 4 });
    const input = seqInput({
      tokenIds: Int32Array.of(5, 9, 13, 4, 8, 20),
      pageTable: pageRange(0, 1),
      returnLogits: true,
    });
    const [a] = await classic.forward([input]);
    const [b] = await newer.forward([input]);
    assert.deepEqual(a?.samples[0]?.logits, b?.samples[0]?.logits);
  });

  test('an unsupported rope type is named', async () => {
    const dir = withConfig('linear', (c) => {
      c.rope_parameters = { rope_theta: 10000, rope_type: 'linear', factor: 2 };
    });
    await assert.rejects(Executor.open({ modelDir: dir }), (err: unknown) => {
      assert.ok(err instanceof ModelConfigError);
      assert.match(err.message, /unsupported rope_parameters rope_type "linear"/);
      return true;
    });
  });

  test('a missing required key is named', async () => {
    const dir = withConfig('no-layers', (c) => {
      delete c.num_hidden_layers;
    });
    await assert.rejects(Executor.open({ modelDir: dir }), /missing "num_hidden_layers"/);
  });
});
