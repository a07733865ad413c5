// The Grafana dashboards (deploy/grafana/*.json), declared once: each panel's title, unit and
// PromQL, and whether load moves it (the observability test asserts moving panels return
// non-zero values under load, every panel returns data). `pnpm dashboards:gen` writes the JSON;
// test/e2e/observe-dashboards.test.ts checks it is fresh and valid against @grafana/schema.
import type { Dashboard, Panel, RowPanel, VariableModel } from '@grafana/schema';

export interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: { expr: string; legend: string }[];
  /** Under load this panel shows non-zero values (an idle cluster may show zeros). */
  moves: boolean;
  kind?: 'timeseries' | 'stat';
}

export interface DashboardSpec {
  file: string;
  uid: string;
  title: string;
  description: string;
  /** Template variables besides ${datasource}. */
  variables: ('model' | 'worker')[];
  rows: { title: string; panels: PanelSpec[] }[];
}

const rate = '$__rate_interval';
const router = 'model=~"$model"';
const completions = `${router},route=~"POST /v1/.*"`;

function quantiles(metric: string, selector: string, qs: number[], by = ''): PanelSpec['queries'] {
  const group = by === '' ? 'le' : `le, ${by}`;
  return qs.map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${group}) (rate(${metric}_bucket{${selector}}[${rate}])))`,
    legend: by === '' ? `p${Math.round(q * 100)}` : `p${Math.round(q * 100)} {{${by}}}`,
  }));
}

function sumRate(metric: string, selector: string, by: string, legend: string): PanelSpec['queries'][number] {
  return {
    expr: `sum by (${by}) (rate(${metric}{${selector}}[${rate}]))`,
    legend,
  };
}

const overview: DashboardSpec = {
  file: 'overview.json',
  uid: 'tandem-overview',
  title: 'tandem / overview',
  description: 'The cluster at a glance: traffic, latency SLOs, admission, tokens, workers.',
  variables: ['model'],
  rows: [
    {
      title: 'Traffic',
      panels: [
        {
          title: 'Requests / s by status',
          description:
            'Completion and chat requests answered per second, by HTTP status (429: admission queue full).',
          unit: 'reqps',
          queries: [sumRate('tandem_router_requests_total', completions, 'status', '{{status}}')],
          moves: true,
        },
        {
          title: 'Non-2xx share',
          description: 'Share of completion requests that did not succeed (4xx and 5xx, 429 included).',
          unit: 'percentunit',
          queries: [
            {
              expr: `1 - sum(rate(tandem_router_requests_total{${completions},status=~"2.."}[${rate}])) / sum(rate(tandem_router_requests_total{${completions}}[${rate}]))`,
              legend: 'non-2xx',
            },
          ],
          moves: true,
        },
        {
          title: '429s / s (admission queue full)',
          description: 'Requests refused by admission (Retry-After sent).',
          unit: 'reqps',
          queries: [
            {
              expr: `sum(rate(tandem_router_admission_rejected_total{${router}}[${rate}]))`,
              legend: '429',
            },
          ],
          moves: true,
        },
        {
          title: 'Tokens / s',
          description: 'Prompt tokens routed and completion tokens returned per second.',
          unit: 'short',
          queries: [
            { expr: `sum(rate(tandem_router_prompt_tokens_total{${router}}[${rate}]))`, legend: 'input' },
            {
              expr: `sum(rate(tandem_router_completion_tokens_total{${router}}[${rate}]))`,
              legend: 'output',
            },
          ],
          moves: true,
        },
      ],
    },
    {
      title: 'Latency',
      panels: [
        {
          title: 'Time to first token',
          description: 'Routing decision to the first token (remote prefill and KV transfer included).',
          unit: 's',
          queries: quantiles('tandem_router_time_to_first_token_seconds', router, [0.5, 0.95, 0.99]),
          moves: true,
        },
        {
          title: 'Inter-token latency',
          description: 'Gaps between consecutive tokens of a choice.',
          unit: 's',
          queries: quantiles('tandem_router_inter_token_latency_seconds', router, [0.5, 0.95, 0.99]),
          moves: true,
        },
        {
          title: 'Time per output token',
          description: 'Per choice: (last token - first token) / (tokens - 1).',
          unit: 's',
          queries: quantiles('tandem_router_time_per_output_token_seconds', router, [0.5, 0.95]),
          moves: true,
        },
        {
          title: 'Request duration',
          description: 'Admission to the last byte.',
          unit: 's',
          queries: quantiles('tandem_router_request_duration_seconds', router, [0.5, 0.95, 0.99]),
          moves: true,
        },
        {
          title: 'Admission queue wait',
          description: "Time requests waited in the router's admission queue.",
          unit: 's',
          queries: quantiles('tandem_router_queue_seconds', router, [0.5, 0.99]),
          moves: true,
        },
        {
          title: 'SLO burn rate (1 = on budget)',
          description:
            'Bad ratio over 5 minutes / the 1% error budget: TTFT over 2.5 s, token gaps over 100 ms, 5xx (recording rules of deploy/prometheus).',
          unit: 'short',
          queries: [
            { expr: `tandem:ttft_slo_bad_ratio:rate5m{${router}} / 0.01`, legend: 'TTFT' },
            { expr: `tandem:itl_slo_bad_ratio:rate5m{${router}} / 0.01`, legend: 'ITL' },
            { expr: `tandem:request_error_ratio:rate5m{${router}} / 0.01`, legend: 'errors' },
          ],
          moves: false,
        },
      ],
    },
    {
      title: 'Load',
      panels: [
        {
          title: 'Admission: running and queued',
          description: 'Requests admitted by the router and waiting in its queue.',
          unit: 'short',
          queries: [
            { expr: `sum(tandem_router_requests_running{${router}})`, legend: 'running' },
            { expr: `sum(tandem_router_requests_queued{${router}})`, legend: 'queued' },
          ],
          moves: true,
        },
        {
          title: 'Sequences running / waiting by role',
          description: 'Worker sequences holding KV pages, and waiting for admission.',
          unit: 'short',
          queries: [
            { expr: `sum by (role) (tandem_worker_requests_running{${router}})`, legend: 'running {{role}}' },
            { expr: `sum by (role) (tandem_worker_requests_waiting{${router}})`, legend: 'waiting {{role}}' },
          ],
          moves: true,
        },
        {
          title: 'KV pool used by role (max)',
          description: 'Share of KV pages held by sequences on the fullest worker of each role.',
          unit: 'percentunit',
          queries: [{ expr: `max by (role) (tandem_worker_kv_usage_ratio{${router}})`, legend: '{{role}}' }],
          moves: true,
        },
        {
          title: 'Prompt / completion length (mean)',
          description: 'Input and output sequence lengths (ISL / OSL) per prompt.',
          unit: 'short',
          queries: [
            {
              expr: `sum(rate(tandem_router_input_tokens_sum{${router}}[${rate}])) / sum(rate(tandem_router_input_tokens_count{${router}}[${rate}]))`,
              legend: 'ISL',
            },
            {
              expr: `sum(rate(tandem_router_output_tokens_sum{${router}}[${rate}])) / sum(rate(tandem_router_output_tokens_count{${router}}[${rate}]))`,
              legend: 'OSL',
            },
          ],
          moves: true,
        },
        {
          title: 'Workers by role',
          description: 'Workers the router knows (announcements and leases).',
          unit: 'short',
          kind: 'stat',
          queries: [{ expr: `sum by (role) (tandem_router_known_workers{${router}})`, legend: '{{role}}' }],
          moves: false,
        },
        {
          title: 'Prompt tokens served from cache',
          description: 'Share of routed prompt tokens a worker served from its prefix cache.',
          unit: 'percentunit',
          queries: [
            {
              expr: `sum(rate(tandem_router_cached_tokens_total{${router}}[${rate}])) / sum(rate(tandem_router_prompt_tokens_total{${router}}[${rate}]))`,
              legend: 'cached',
            },
          ],
          moves: true,
        },
      ],
    },
  ],
};

const worker = 'model=~"$model"';

const prefillDecode: DashboardSpec = {
  file: 'prefill-decode.json',
  uid: 'tandem-prefill-decode',
  title: 'tandem / prefill, decode and KV transfers',
  description: 'The two pools of a disaggregated cluster and the KV moving between them.',
  variables: ['model'],
  rows: [
    {
      title: 'Prefill pool',
      panels: [
        {
          title: 'Prefill tokens / s by worker',
          description: 'Prompt positions computed per second (chunks and recomputation included).',
          unit: 'short',
          queries: [sumRate('tandem_worker_prefill_tokens_total', worker, 'worker', '{{worker}}')],
          moves: true,
        },
        {
          title: 'Queued prefill tokens by worker',
          description: 'Prompt tokens still to compute: the planner scales the prefill pool on this.',
          unit: 'short',
          queries: [
            {
              expr: `max_over_time(tandem_worker_queued_prefill_tokens{${worker}}[${rate}])`,
              legend: '{{worker}}',
            },
          ],
          moves: true,
        },
        {
          title: 'Prefill calls / s by outcome',
          description: 'Prefill RPCs answered by prefill workers.',
          unit: 'reqps',
          queries: [sumRate('tandem_prefill_requests_total', worker, 'outcome', '{{outcome}}')],
          moves: true,
        },
        {
          title: 'Decode-worker prompts by where they were prefilled',
          description:
            "Remote (a prefill worker), local by the router's decision, below threshold, or after every prefill worker failed.",
          unit: 'reqps',
          queries: [sumRate('tandem_decode_prefills_total', worker, 'where', '{{where}}')],
          moves: true,
        },
      ],
    },
    {
      title: 'Decode pool',
      panels: [
        {
          title: 'Decode tokens / s by worker',
          description: 'Generated positions computed per second.',
          unit: 'short',
          queries: [sumRate('tandem_worker_decode_tokens_total', worker, 'worker', '{{worker}}')],
          moves: true,
        },
        {
          title: 'Sequences running by worker',
          description: 'Sequences holding KV pages (decode batch).',
          unit: 'short',
          queries: [
            {
              expr: `max_over_time(tandem_worker_requests_running{${worker}}[${rate}])`,
              legend: '{{worker}}',
            },
          ],
          moves: true,
        },
        {
          title: 'Batch size by role',
          description: 'Sequences per step.',
          unit: 'short',
          queries: quantiles('tandem_worker_batch_size', worker, [0.5, 0.95], 'role'),
          moves: true,
        },
        {
          title: 'Step time by role',
          description: 'Schedule + forward pass + postprocess.',
          unit: 's',
          queries: quantiles('tandem_worker_step_seconds', worker, [0.5, 0.95], 'role'),
          moves: true,
        },
      ],
    },
    {
      title: 'KV transfers',
      panels: [
        {
          title: 'KV bytes / s',
          description: 'KV moved from prefill to decode workers (send and receive sides).',
          unit: 'Bps',
          queries: [
            sumRate(
              'tandem_kv_transfer_bytes_total',
              worker,
              'direction, transport',
              '{{direction}} ({{transport}})',
            ),
          ],
          moves: true,
        },
        {
          title: 'KV transfer duration',
          description: 'Send: first page to commit. Receive: the Prefill call with its transfer.',
          unit: 's',
          queries: quantiles('tandem_kv_transfer_seconds', worker, [0.5, 0.95], 'direction'),
          moves: true,
        },
        {
          title: 'Per-layer KV pushes / s',
          description: 'Layers pushed while later layers still computed.',
          unit: 'short',
          queries: [sumRate('tandem_kv_layer_pushes_total', worker, 'worker', '{{worker}}')],
          moves: true,
        },
        {
          title: 'KV transfers in flight',
          description: 'Transfers between their first page and their commit.',
          unit: 'short',
          queries: [
            {
              expr: `sum by (direction) (tandem_kv_transfers_in_flight{${worker}})`,
              legend: '{{direction}}',
            },
          ],
          moves: false,
        },
        {
          title: 'KV transfer failures / s',
          description:
            'Failed transfers (the decode worker then tries another prefill worker, then prefills locally).',
          unit: 'short',
          queries: [sumRate('tandem_kv_transfer_failures_total', worker, 'direction', '{{direction}}')],
          moves: false,
        },
      ],
    },
  ],
};

const cacheRouting: DashboardSpec = {
  file: 'cache-routing.json',
  uid: 'tandem-cache-routing',
  title: 'tandem / cache and routing',
  description: 'Prefix caches, the KV index and the routing decisions made on them.',
  variables: ['model'],
  rows: [
    {
      title: 'Prefix cache',
      panels: [
        {
          title: 'Prefix cache hit ratio by worker',
          description: 'Prompt tokens served from the prefix cache / prompt tokens looked up.',
          unit: 'percentunit',
          queries: [
            {
              expr: `sum by (worker) (rate(tandem_worker_prefix_cache_hit_tokens_total{${worker}}[${rate}])) / sum by (worker) (rate(tandem_worker_prefix_cache_queried_tokens_total{${worker}}[${rate}]))`,
              legend: '{{worker}}',
            },
          ],
          moves: true,
        },
        {
          title: 'KV pages by state',
          description: 'Held by sequences, cached (evictable) and free, all workers.',
          unit: 'short',
          queries: [
            { expr: `sum(tandem_worker_kv_pages_used{${worker}})`, legend: 'used' },
            { expr: `sum(tandem_worker_kv_pages_cached{${worker}})`, legend: 'cached' },
            { expr: `sum(tandem_worker_kv_pages_free{${worker}})`, legend: 'free' },
          ],
          moves: true,
        },
        {
          title: 'Evictions and preemptions / s',
          description:
            'Cached pages evicted to make room; sequences preempted (pages retracted, recomputed later).',
          unit: 'short',
          queries: [
            {
              expr: `sum(rate(tandem_worker_evicted_pages_total{${worker}}[${rate}]))`,
              legend: 'evicted pages',
            },
            { expr: `sum(rate(tandem_worker_preemptions_total{${worker}}[${rate}]))`, legend: 'preemptions' },
          ],
          moves: false,
        },
        {
          title: 'KV index',
          description:
            "Blocks in the router's KV index (from KV events) and optimistic entries awaiting confirmation.",
          unit: 'short',
          queries: [
            { expr: `sum(tandem_router_kv_index_blocks{${router}})`, legend: 'blocks' },
            { expr: `sum(tandem_router_kv_index_pending_blocks{${router}})`, legend: 'pending' },
          ],
          moves: true,
        },
      ],
    },
    {
      title: 'Routing',
      panels: [
        {
          title: 'Routing decisions / s by worker',
          description: 'Prompts routed, by policy and chosen worker.',
          unit: 'short',
          queries: [
            sumRate(
              'tandem_router_routing_decisions_total',
              router,
              'policy, worker',
              '{{policy}} -> {{worker}}',
            ),
          ],
          moves: true,
        },
        {
          title: 'Prefill choices / s',
          description: 'For decode workers: remote on a named prefill worker, local, or undecided.',
          unit: 'short',
          queries: [
            sumRate('tandem_router_prefill_decisions_total', router, 'type, worker', '{{type}} {{worker}}'),
          ],
          moves: true,
        },
        {
          title: 'Decision time',
          description: 'Time to score the candidates and pick a worker.',
          unit: 's',
          queries: quantiles('tandem_router_decision_seconds', router, [0.5, 0.99]),
          moves: true,
        },
        {
          title: 'In flight by worker',
          description: 'Requests in flight on each worker across router replicas.',
          unit: 'short',
          queries: [
            {
              expr: `max_over_time(tandem_router_worker_inflight{${router}}[${rate}])`,
              legend: '{{worker}}',
            },
          ],
          moves: true,
        },
        {
          title: 'Circuit breakers',
          description: '0 closed, 1 half-open (probing), 2 open.',
          unit: 'short',
          queries: [
            {
              expr: `max by (worker) (tandem_router_circuit_breaker_state{${router}})`,
              legend: '{{worker}}',
            },
          ],
          moves: false,
        },
        {
          title: 'Retries and KV resyncs / s',
          description: 'Prompts retried on another worker; KV index resyncs from block dumps.',
          unit: 'short',
          queries: [
            { expr: `sum(rate(tandem_router_retries_total{${router}}[${rate}]))`, legend: 'retries' },
            { expr: `sum(rate(tandem_router_kv_resyncs_total{${router}}[${rate}]))`, legend: 'resyncs' },
          ],
          moves: false,
        },
      ],
    },
  ],
};

const one = 'model=~"$model",worker=~"$worker"';

const perWorker: DashboardSpec = {
  file: 'worker.json',
  uid: 'tandem-worker',
  title: 'tandem / worker',
  description: 'One worker (or several) in detail: engine, KV pool, transfers, process.',
  variables: ['model', 'worker'],
  rows: [
    {
      title: 'Engine',
      panels: [
        {
          title: 'Sequences running / waiting',
          description: 'vLLM names: vllm:num_requests_running, vllm:num_requests_waiting.',
          unit: 'short',
          queries: [
            {
              expr: `max_over_time(tandem_worker_requests_running{${one}}[${rate}])`,
              legend: 'running {{worker}}',
            },
            {
              expr: `max_over_time(vllm:num_requests_waiting{${one}}[${rate}])`,
              legend: 'waiting {{worker}}',
            },
          ],
          moves: true,
        },
        {
          title: 'Tokens computed / s',
          description: 'Prefill and decode positions per second.',
          unit: 'short',
          queries: [
            sumRate('tandem_worker_prefill_tokens_total', one, 'worker', 'prefill {{worker}}'),
            sumRate('tandem_worker_decode_tokens_total', one, 'worker', 'decode {{worker}}'),
          ],
          moves: true,
        },
        {
          title: 'Generated tokens / s',
          description: 'Tokens streamed to callers (vllm:generation_tokens_total).',
          unit: 'short',
          queries: [sumRate('tandem_worker_generated_tokens_total', one, 'worker', '{{worker}}')],
          moves: true,
        },
        {
          title: 'Step time',
          description: 'Per worker.',
          unit: 's',
          queries: quantiles('tandem_worker_step_seconds', one, [0.5, 0.95, 0.99], 'worker'),
          moves: true,
        },
        {
          title: 'Batch size',
          description: 'Sequences per step.',
          unit: 'short',
          queries: quantiles('tandem_worker_batch_size', one, [0.5, 0.95], 'worker'),
          moves: true,
        },
        {
          title: 'Queued prefill tokens',
          description: 'Prompt tokens still to compute on this worker.',
          unit: 'short',
          queries: [{ expr: `tandem_worker_queued_prefill_tokens{${one}}`, legend: '{{worker}}' }],
          moves: false,
        },
      ],
    },
    {
      title: 'KV pool',
      panels: [
        {
          title: 'KV usage',
          description: 'Pages held by sequences / all pages (vllm:kv_cache_usage_perc).',
          unit: 'percentunit',
          queries: [
            { expr: `max_over_time(vllm:kv_cache_usage_perc{${one}}[${rate}])`, legend: '{{worker}}' },
          ],
          moves: true,
        },
        {
          title: 'KV pages',
          description: 'Used, cached (evictable) and free pages.',
          unit: 'short',
          queries: [
            { expr: `tandem_worker_kv_pages_used{${one}}`, legend: 'used {{worker}}' },
            { expr: `tandem_worker_kv_pages_cached{${one}}`, legend: 'cached {{worker}}' },
            { expr: `tandem_worker_kv_pages_free{${one}}`, legend: 'free {{worker}}' },
          ],
          moves: true,
        },
        {
          title: 'KV transfer bytes / s',
          description: 'What this worker sent (prefill) or received (decode).',
          unit: 'Bps',
          queries: [
            sumRate('tandem_kv_transfer_bytes_total', one, 'worker, direction', '{{direction}} {{worker}}'),
          ],
          moves: true,
        },
        {
          title: 'Preemptions and evictions / s',
          description: 'Sequences preempted; cached pages evicted.',
          unit: 'short',
          queries: [
            sumRate('tandem_worker_preemptions_total', one, 'worker', 'preemptions {{worker}}'),
            sumRate('tandem_worker_evicted_pages_total', one, 'worker', 'evictions {{worker}}'),
          ],
          moves: false,
        },
      ],
    },
    {
      title: 'Process',
      panels: [
        {
          title: 'CPU',
          description: 'CPU seconds per second (cores busy).',
          unit: 'short',
          queries: [{ expr: `rate(process_cpu_seconds_total{${one}}[${rate}])`, legend: '{{worker}}' }],
          moves: true,
        },
        {
          title: 'Resident memory',
          description: 'Process RSS.',
          unit: 'bytes',
          queries: [{ expr: `process_resident_memory_bytes{${one}}`, legend: '{{worker}}' }],
          moves: false,
        },
        {
          title: 'Event loop delay (p99)',
          description: 'How late the JavaScript thread ran timers (the executor computes off it).',
          unit: 's',
          queries: [{ expr: `nodejs_eventloop_delay_p99_seconds{${one}}`, legend: '{{worker}}' }],
          moves: false,
        },
      ],
    },
  ],
};

export const dashboardSpecs: readonly DashboardSpec[] = [overview, prefillDecode, cacheRouting, perWorker];

/** Grafana's reference to the dashboard's datasource variable (not a template literal). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
export const datasourceUid = '${datasource}';
const datasource = { type: 'prometheus', uid: datasourceUid };

function variable(name: 'model' | 'worker'): VariableModel {
  const query =
    name === 'model'
      ? 'label_values(tandem_router_requests_total, model)'
      : 'label_values(tandem_worker_requests_running{model=~"$model"}, worker)';
  return {
    type: 'query',
    name,
    label: name,
    datasource,
    query: { query, refId: `${name}-values` },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { text: 'All', value: '$__all' },
    sort: 1,
  };
}

function panelJson(spec: PanelSpec, id: number, x: number, y: number): Panel {
  return {
    id,
    type: spec.kind ?? 'timeseries',
    title: spec.title,
    description: spec.description,
    datasource,
    gridPos: { h: 8, w: 8, x, y },
    fieldConfig: { defaults: { unit: spec.unit, min: 0 }, overrides: [] },
    options:
      spec.kind === 'stat'
        ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, graphMode: 'none' }
        : {
            legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
            tooltip: { mode: 'multi' },
          },
    targets: spec.queries.map((query, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource,
      expr: query.expr,
      legendFormat: query.legend,
      range: true,
    })),
  };
}

/** The Grafana dashboard JSON of a spec (schemaVersion 42, Grafana 12/13). */
export function dashboardJson(spec: DashboardSpec): Dashboard {
  const panels: (Panel | RowPanel)[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    row.panels.forEach((panel, i) => {
      panels.push(panelJson(panel, id++, (i % 3) * 8, y + Math.floor(i / 3) * 8));
    });
    y += Math.ceil(row.panels.length / 3) * 8;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ['tandem'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 42,
    time: { from: 'now-30m', to: 'now' },
    refresh: '10s',
    timezone: 'browser',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        {
          type: 'datasource',
          name: 'datasource',
          label: 'Prometheus',
          query: 'prometheus',
          current: { text: 'default', value: 'default' },
          hide: 0,
        },
        ...spec.variables.map(variable),
      ],
    },
    panels,
  };
}
