// Writes a Qwen2.5-0.5B-shaped float32 checkpoint with random weights (config.json +
// model.safetensors), so the bench needs no download.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TensorToWrite, writeSafetensors } from '@tandem/executor';

export const qwen05bShape = {
  hiddenSize: 896,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  intermediateSize: 4864,
  vocabSize: 151936,
};

/** Uniform values in [-scale, scale) from a seeded xorshift, written in 1 MiB chunks. */
function randomTensor(name: string, shape: number[], scale: number, seed: number): TensorToWrite {
  const numElements = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    dtype: 'F32',
    shape,
    numBytes: numElements * 4,
    bytes: (write) => {
      let state = (seed * 2654435761) >>> 0 || 1;
      const chunk = new Float32Array(1 << 18);
      for (let done = 0; done < numElements; done += chunk.length) {
        const n = Math.min(chunk.length, numElements - done);
        for (let i = 0; i < n; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          chunk[i] = ((state >>> 0) / 4294967296 - 0.5) * 2 * scale;
        }
        write(new Uint8Array(chunk.buffer, 0, n * 4));
      }
    },
  };
}

function onesTensor(name: string, size: number): TensorToWrite {
  const values = new Float32Array(size).fill(1);
  return { name, dtype: 'F32', shape: [size], numBytes: size * 4, bytes: new Uint8Array(values.buffer) };
}

/** Returns the number of parameters written. */
export function writeRandomQwen2Checkpoint(dir: string, shape = qwen05bShape): number {
  const { hiddenSize: H, numLayers, numHeads, numKvHeads, intermediateSize: I, vocabSize: V } = shape;
  const headDim = H / numHeads;
  const config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: numLayers,
    num_attention_heads: numHeads,
    num_key_value_heads: numKvHeads,
    vocab_size: V,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    tie_word_embeddings: true,
    hidden_act: 'silu',
    bos_token_id: 151643,
    eos_token_id: 151645,
    torch_dtype: 'float32',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const tensors: TensorToWrite[] = [randomTensor('model.embed_tokens.weight', [V, H], 0.02, 1)];
  let seed = 2;
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(
      onesTensor(`${p}input_layernorm.weight`, H),
      randomTensor(`${p}self_attn.q_proj.weight`, [numHeads * headDim, H], 0.03, seed++),
      randomTensor(`${p}self_attn.q_proj.bias`, [numHeads * headDim], 0.01, seed++),
      randomTensor(`${p}self_attn.k_proj.weight`, [numKvHeads * headDim, H], 0.03, seed++),
      randomTensor(`${p}self_attn.k_proj.bias`, [numKvHeads * headDim], 0.01, seed++),
      randomTensor(`${p}self_attn.v_proj.weight`, [numKvHeads * headDim, H], 0.03, seed++),
      randomTensor(`${p}self_attn.v_proj.bias`, [numKvHeads * headDim], 0.01, seed++),
      randomTensor(`${p}self_attn.o_proj.weight`, [H, numHeads * headDim], 0.03, seed++),
      onesTensor(`${p}post_attention_layernorm.weight`, H),
      randomTensor(`${p}mlp.gate_proj.weight`, [I, H], 0.03, seed++),
      randomTensor(`${p}mlp.up_proj.weight`, [I, H], 0.03, seed++),
      randomTensor(`${p}mlp.down_proj.weight`, [H, I], 0.015, seed++),
    );
  }
  tensors.push(onesTensor('model.norm.weight', H));
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return tensors.reduce((n, t) => n + t.numBytes / 4, 0);
}
