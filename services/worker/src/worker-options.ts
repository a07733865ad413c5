// `tandem worker`'s options, declared once (common/options.ts): flags, environment, defaults.
import { defineOptions, logLevelOption } from '@tandem/common';
import { defaultSchedulerOptions } from '@tandem/runtime';
import { defaultPresenceTimings } from './worker-host.ts';

export const workerOptions = defineOptions('worker', '--role unified|prefill|decode --model DIR [options]', {
  role: {
    type: 'string',
    choices: ['unified', 'prefill', 'decode'],
    default: 'unified',
    doc: 'unified: prefills and decodes its own requests; prefill: serves Prefill calls and pushes KV to decode workers; decode: takes Generate with a prefill worker named and receives its KV',
  },
  model: {
    type: 'string',
    default: null,
    valueName: 'DIR',
    doc: 'Hugging Face checkpoint folder (required)',
  },
  port: { type: 'int', default: 50051, min: 0, max: 65535, doc: 'gRPC port (0 picks a free one)' },
  host: { type: 'string', default: '127.0.0.1', valueName: 'ADDR', doc: 'listen address' },
  'advertise-address': {
    type: 'string',
    default: null,
    valueName: 'HOST:PORT',
    doc: 'address routers dial (default host:port)',
  },
  nats: {
    type: 'string',
    default: null,
    env: 'NATS_URL',
    valueName: 'URL',
    doc: 'NATS for announcements and KV events (none or unset: standalone)',
  },
  redis: {
    type: 'string',
    default: null,
    env: 'REDIS_URL',
    valueName: 'URL',
    doc: 'Redis for the worker lease (none or unset: no lease)',
  },
  'worker-id': { type: 'string', default: null, valueName: 'ID', doc: 'default <hostname>-<port>-<random>' },
  'served-model-name': {
    type: 'string',
    default: null,
    valueName: 'NAME',
    doc: "the model name it announces (default the checkpoint folder's name)",
  },
  device: { type: 'string', default: 'cpu', valueName: 'cpu|cuda:N|auto', doc: 'where it computes' },
  dtype: {
    type: 'string',
    default: null,
    choices: ['float32', 'bfloat16', 'float16'],
    doc: 'compute dtype (default float32 on CPU, bfloat16 on CUDA)',
  },
  'page-size': { type: 'int', default: 16, min: 1, doc: 'tokens per KV page (one per model in a cluster)' },
  'num-pages': { type: 'int', default: null, min: 1, doc: 'KV pool size in pages (default from memory)' },
  'rope-frequency-rounding': {
    type: 'string',
    default: 'none',
    choices: ['none', 'stored-dtype'],
    doc: 'RoPE inv_freq of a bf16/f16 checkpoint: float32 as from_pretrained keeps it (none), or rounded as after .to(bfloat16)',
  },
  threads: { type: 'int', default: null, min: 1, doc: 'CPU threads (default all cores)' },
  'max-batch-tokens': {
    type: 'int',
    default: defaultSchedulerOptions.maxBatchTokens,
    min: 1,
    doc: 'tokens per step (decode tokens + prefill chunks)',
  },
  'max-running': {
    type: 'int',
    default: defaultSchedulerOptions.maxRunningSequences,
    min: 1,
    doc: 'sequences holding pages at once',
  },
  'prefill-chunk': {
    type: 'int',
    default: defaultSchedulerOptions.maxPrefillChunkTokens,
    min: 1,
    doc: 'largest prefill chunk per sequence and step',
  },
  'no-prefix-cache': { type: 'boolean', default: false, doc: 'disable the radix prefix cache' },
  'kv-host': {
    type: 'string',
    default: null,
    valueName: 'ADDR',
    doc: 'decode role: kvtransfer receiver address (default --host)',
  },
  'kv-streams': {
    type: 'int',
    default: 2,
    min: 1,
    max: 64,
    doc: 'prefill role: TCP streams per decode worker',
  },
  'prefill-lease-ms': {
    type: 'int',
    default: 30_000,
    min: 1,
    doc: 'decode role: give a remote prefill (compute + transfer) up after this long',
  },
  'prefill-stall-ms': {
    type: 'int',
    default: 2000,
    min: 0,
    doc: 'decode role: a prefill worker that lands no KV this long gets a health check; no answer within 1 s gives it up for the next one (or a local prefill) (0: wait for the lease)',
  },
  'disagg-threshold': {
    type: 'int',
    default: 0,
    min: 0,
    doc: 'decode role, requests with no router decision: use a discovered prefill worker when >= N tokens are not cached here (0: always, when one is known)',
  },
  'heartbeat-interval-ms': {
    type: 'int',
    default: defaultPresenceTimings.heartbeatIntervalMs,
    min: 10,
    doc: 'announcement heartbeat and lease renewal period',
  },
  'lease-ttl-ms': {
    type: 'int',
    default: defaultPresenceTimings.leaseTtlMs,
    min: 100,
    doc: 'a silent worker is dropped after this long (Redis lease TTL)',
  },
  'load-interval-ms': {
    type: 'int',
    default: defaultPresenceTimings.loadIntervalMs,
    min: 10,
    doc: 'load report period',
  },
  'drain-grace-ms': {
    type: 'int',
    default: 10_000,
    min: 0,
    doc: 'on SIGTERM: stop taking work, deregister, let running requests finish this long, then abort them',
  },
  ...logLevelOption,
});
