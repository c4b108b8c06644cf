/**
 * `ferry events send|state|demo` and `ferry dlq list|redrive` — see docs/cli.md and docs/events.md.
 *
 * On the embedded stack (the default target) the events resources come from the synthesized CDK template through
 * the local deploy (local/deploy), the accept function is served by local/function-url (the stand-in for the
 * Function URL) and the consume function runs under local/event-source with the template's event source mapping
 * settings. `--aws [--stack NAME]` reads the deployed stack's outputs instead (state, dlq).
 */
import { DescribeStacksCommand, CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import type { Command } from "commander";
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { sqs } from "../../core/aws/clients.js";
import { ENV } from "../../core/env.js";
import { ConfigError, InputError, NotFoundError, ValidationError } from "../../core/errors.js";
import type { ConsumeDeps, ConsumeResult } from "../../core/events/consume.js";
import {
  diffState,
  type EntityState,
  expectedStates,
  type FerryEvent,
  serializeEvent,
} from "../../core/events/model.js";
import { listDlq, queueCounts, redriveDlq } from "../../core/events/queue.js";
import { getEntityState } from "../../core/events/store.js";
import { EVENTS } from "../../core/limits.js";
import { mulberry32 as rng } from "../../core/random.js";

// ------------------------------------------------------------------------------------------------ targets

export interface EventsTarget {
  table: string;
  queueUrl: string;
  dlqUrl: string;
  /** the deployed Function URL (AWS only) */
  acceptUrl?: string;
  /** the event source mapping settings of the consume function (from the template) */
  esm: {
    batchSize: number;
    maximumBatchingWindowSeconds: number;
    maximumConcurrency?: number;
    reportBatchItemFailures: boolean;
    functionTimeoutSeconds: number;
  };
}

const endsWithEntry = (entry: string | undefined, rel: string) =>
  !!entry && entry.replace(/\\/g, "/").endsWith(`functions/${rel}`);

/**
 * The events resources of the local deployment of the ferry app (created if missing; idempotent). Call inside
 * withLocalStack (process.env points at the stack).
 */
export async function localEventsTarget(
  deployment?: import("../../local/deploy/deploy.js").LocalDeployment,
): Promise<EventsTarget> {
  let d = deployment;
  if (!d) {
    const { deployLocal } = await import("../../local/deploy/deploy.js");
    d = await deployLocal({ applyEnv: false });
  }
  const fns = Object.values(d.functions);
  const consume = fns.find((f) => endsWithEntry(f.entry, "events/consume.ts"));
  const accept = fns.find((f) => endsWithEntry(f.entry, "events/accept.ts"));
  if (!consume || !accept) {
    throw new ConfigError(
      "the ferry app has no events functions (infra/constructs/event-ingestion.ts not in the stack)",
    );
  }
  const table = consume.env[ENV.eventsTable];
  const dlqUrl = consume.env[ENV.eventsDlqUrl];
  const queueUrl = accept.env[ENV.eventsQueueUrl];
  if (!table || !dlqUrl || !queueUrl) {
    throw new ConfigError(`events functions lack ${ENV.eventsTable}/${ENV.eventsDlqUrl}/${ENV.eventsQueueUrl}`);
  }
  const m = d.eventSourceMappings.find((x) => x.functionLogicalId === consume!.logicalId);
  return {
    table,
    queueUrl,
    dlqUrl,
    esm: {
      batchSize: m?.batchSize ?? EVENTS.consumerBatchSize,
      maximumBatchingWindowSeconds: m?.maximumBatchingWindowSeconds ?? EVENTS.consumerBatchingWindowSeconds,
      maximumConcurrency: m?.maximumConcurrency ?? EVENTS.consumerMaxConcurrency,
      reportBatchItemFailures: m?.reportBatchItemFailures ?? true,
      functionTimeoutSeconds: consume.timeoutSeconds,
    },
  };
}

/** The events resources of a deployed stack, from its CloudFormation outputs. */
export async function awsEventsTarget(stackName: string): Promise<EventsTarget> {
  const cfn = new CloudFormationClient({});
  const res = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs = new Map((res.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
  const need = (k: string) => {
    const v = outputs.get(k);
    if (!v) throw new ConfigError(`stack ${stackName} has no output ${k} (is EventIngestion deployed?)`);
    return v;
  };
  return {
    table: need("EventsTableName"),
    queueUrl: need("EventsQueueUrl"),
    dlqUrl: need("EventsDlqUrl"),
    acceptUrl: need("EventsAcceptUrl"),
    esm: {
      batchSize: EVENTS.consumerBatchSize,
      maximumBatchingWindowSeconds: EVENTS.consumerBatchingWindowSeconds,
      maximumConcurrency: EVENTS.consumerMaxConcurrency,
      reportBatchItemFailures: true,
      functionTimeoutSeconds: EVENTS.consumerTimeoutSeconds,
    },
  };
}

/** Keep Powertools quiet on the CLI's stdout (metrics EMF lines and info logs would corrupt --json output). */
function quietPowertools(): void {
  process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
  process.env.POWERTOOLS_LOG_LEVEL ??= "ERROR";
  process.env.POWERTOOLS_DEV ??= "false";
}

// ------------------------------------------------------------------------------------------------ local runtime

export interface OutcomeCounts {
  applied: number;
  duplicate: number;
  stale: number;
  parked: number;
  /** failed attempts (the record is retried by SQS; not a final outcome) */
  failedAttempts: number;
}

export interface LocalAccept {
  url: string;
  close(): Promise<void>;
}

/** Serve functions/events/accept.ts on a local Function URL stand-in. */
export async function startLocalAccept(queueUrl: string, port?: number): Promise<LocalAccept> {
  quietPowertools();
  process.env[ENV.eventsQueueUrl] = queueUrl;
  const { handler } = await import("../../functions/events/accept.js");
  const { startFunctionUrlServer } = await import("../../local/function-url/server.js");
  // the handler reads its queue from the environment (as on Lambda): set it per request, so several local
  // endpoints for different queues can coexist in one process
  const srv = await startFunctionUrlServer({
    handler: (event) => {
      process.env[ENV.eventsQueueUrl] = queueUrl;
      return handler(event);
    },
    port,
  });
  return { url: srv.url, close: () => srv.close() };
}

export interface LocalConsumer {
  counts: OutcomeCounts;
  stop(): Promise<void>;
  /** resolves when the queue has nothing visible, in flight or delayed and no invocation runs */
  drained(timeoutMs?: number): Promise<void>;
}

type SqsHandler = (
  event: import("aws-lambda").SQSEvent,
  context: import("aws-lambda").Context,
) => Promise<import("aws-lambda").SQSBatchResponse>;

/**
 * Run functions/events/consume.ts under the local event source mapping emulation with the template's settings.
 * `wrap` lets tests slow the consumer down or inject failures around the real handler.
 */
export async function startLocalConsumer(
  target: EventsTarget,
  opts: {
    wrap?: (h: SqsHandler) => SqsHandler;
    onResult?: (r: ConsumeResult | { outcome: "failed"; reason: string }) => void;
    overrides?: Partial<EventsTarget["esm"]> & { receiveWaitSeconds?: number };
    /** injected clients (tests: failure injection the emulators cannot produce) */
    deps?: Pick<ConsumeDeps, "dynamo" | "sqs">;
  } = {},
): Promise<LocalConsumer> {
  quietPowertools();
  const { createConsumeHandler } = await import("../../functions/events/consume.js");
  const { startEventSourceMapping } = await import("../../local/event-source/index.js");
  const counts: OutcomeCounts = { applied: 0, duplicate: 0, stale: 0, parked: 0, failedAttempts: 0 };
  const base = createConsumeHandler({
    table: target.table,
    dlqUrl: target.dlqUrl,
    ...opts.deps,
    onResult: (r) => {
      if (r.outcome === "failed") counts.failedAttempts++;
      else counts[r.outcome]++;
      opts.onResult?.(r);
    },
  }) as SqsHandler;
  const handler = opts.wrap ? opts.wrap(base) : base;
  const esm = { ...target.esm, ...opts.overrides };
  const mapping = startEventSourceMapping({
    queueUrl: target.queueUrl,
    handler,
    batchSize: esm.batchSize,
    maximumBatchingWindowSeconds: esm.maximumBatchingWindowSeconds,
    maximumConcurrency: esm.maximumConcurrency,
    reportBatchItemFailures: esm.reportBatchItemFailures,
    functionTimeoutSeconds: esm.functionTimeoutSeconds,
    functionName: "ferry-events-consume",
    receiveWaitSeconds: opts.overrides?.receiveWaitSeconds ?? 1,
    onInvocationError: () => {},
  });
  return {
    counts,
    stop: () => mapping.stop(),
    drained: (timeoutMs = 120_000) => mapping.drained({ timeoutMs }),
  };
}

// ------------------------------------------------------------------------------------------------ sending

export interface SendSummary {
  requests: number;
  accepted: number;
  rejected: number;
  failed: number;
  rejects: { line?: number; index: number; reason: string }[];
  latenciesMs: number[];
}

/**
 * POST lines (JSONL) to an accept endpoint in requests of ≤ maxBatchEvents, `concurrency` at a time, optionally
 * paced to `rate` events/s. Requests answered 503 are retried for their failed events only.
 */
export async function postEvents(
  url: string,
  lines: string[],
  opts: { rate?: number; concurrency?: number; chunk?: number; signer?: (req: Request) => Promise<Request> } = {},
): Promise<SendSummary> {
  const chunk = Math.min(opts.chunk ?? EVENTS.maxBatchEvents, EVENTS.maxBatchEvents);
  const chunks: { start: number; lines: string[] }[] = [];
  for (let i = 0; i < lines.length; i += chunk) chunks.push({ start: i, lines: lines.slice(i, i + chunk) });
  const sum: SendSummary = { requests: 0, accepted: 0, rejected: 0, failed: 0, rejects: [], latenciesMs: [] };
  const t0 = Date.now();
  let sentSoFar = 0;
  let next = 0;
  const post = async (body: string) => {
    let req = new Request(url, { method: "POST", headers: { "content-type": "application/x-ndjson" }, body });
    if (opts.signer) req = await opts.signer(req);
    const s = performance.now();
    const res = await fetch(req);
    const text = await res.text();
    sum.latenciesMs.push(performance.now() - s);
    sum.requests++;
    let parsed: { results?: { index: number; status: string; reason?: string; line?: number }[]; error?: string };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ValidationError(`accept endpoint answered ${res.status} with a non-JSON body: ${text.slice(0, 200)}`);
    }
    if (res.status === 400 || res.status === 413 || (res.status >= 400 && !parsed.results)) {
      throw new ValidationError(`accept endpoint answered ${res.status}: ${parsed.error ?? text.slice(0, 200)}`);
    }
    return { status: res.status, results: parsed.results ?? [] };
  };
  const worker = async () => {
    while (next < chunks.length) {
      const c = chunks[next++]!;
      if (opts.rate && opts.rate > 0) {
        const due = t0 + (sentSoFar / opts.rate) * 1000;
        sentSoFar += c.lines.length;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      let pending = c.lines.map((l, i) => ({ line: l, index: c.start + i }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        const { results } = await post(pending.map((p) => p.line).join("\n"));
        const retry: typeof pending = [];
        for (const r of results) {
          const p = pending[r.index];
          if (!p) continue;
          if (r.status === "accepted") sum.accepted++;
          else if (r.status === "rejected") {
            sum.rejected++;
            if (sum.rejects.length < 100)
              sum.rejects.push({
                index: p.index,
                line: p.index + 1,
                reason: (r.reason ?? "").replace(/^line \d+: /, ""),
              });
          } else if (attempt < 5) retry.push(p);
          else sum.failed++;
        }
        pending = retry;
        if (retry.length) await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return sum;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

// ------------------------------------------------------------------------------------------------ demo

export interface EventsDemoOptions {
  events?: number;
  /** percent of extra duplicate deliveries */
  duplicates?: number;
  shuffle?: boolean;
  /** percent of malformed events (half refused by accept, half sent straight to SQS and parked by the consumer) */
  malformed?: number;
  entities?: number;
  seed?: number;
  /** progress lines (stderr) */
  log?: (line: string) => void;
  /** an already resolved target (default: localEventsTarget(deployment)) */
  target?: EventsTarget;
  /** an existing local deployment of the ferry app (skips a second synthesis) */
  deployment?: import("../../local/deploy/deploy.js").LocalDeployment;
}

export interface EventsDemoResult {
  ok: boolean;
  mismatches: number;
  mismatchSamples: string[];
  events: number;
  distinct: number;
  entities: number;
  sent: number;
  accepted: number;
  rejected: number;
  direct: number;
  applied: number;
  duplicate: number;
  stale: number;
  parked: number;
  failedAttempts: number;
  inFlight: number;
  dlqDepth: number;
  seconds: number;
  eventsPerSec: number;
  acceptP50Ms: number;
  acceptP99Ms: number;
}

/** Generate a viewing-history-like event set: per entity increasing times (with ties), unique ids. */
export function generateEvents(n: number, entities: number, rnd: () => number): FerryEvent[] {
  const base = Date.UTC(2026, 0, 1);
  const clock = new Array<number>(entities).fill(base);
  const out: FerryEvent[] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rnd() * entities);
    clock[k]! += Math.floor(rnd() * 3) * 1000; // 0 s steps make equal times: ties broken by id
    out.push({
      entity: `profile-${k}`,
      id: `ev-${String(i).padStart(7, "0")}`,
      time: clock[k]!,
      type: rnd() < 0.8 ? "progress" : "finished",
      payload: { title: `title-${Math.floor(rnd() * 50)}`, positionSec: Math.floor(rnd() * 7200) },
    });
  }
  return out;
}

const POISON: ((i: number) => string)[] = [
  (i) => `{"entity": "profile-x", "id": "bad-${i}", "time": `, // not JSON
  (i) => JSON.stringify({ id: `bad-${i}`, time: 1, type: "progress" }), // no entity
  (i) => JSON.stringify({ entity: "profile-x", id: `bad-${i}`, time: "last tuesday", type: "progress" }),
  (i) => JSON.stringify({ entity: "profile-x", id: `bad ${i}`, time: 1, type: "progress" }), // id with a space
  (i) =>
    JSON.stringify({ entity: "profile-x", id: `big-${i}`, time: 1, type: "progress", payload: "x".repeat(70_000) }),
];

/**
 * The events demo: generate events with duplicates, shuffling and malformed ones, send them through the accept
 * endpoint (malformed ones partly straight to SQS), run the consumer through the local event source mapping until
 * the queue drains, and compare every entity's stored state with the in-order exactly-once model.
 * Call inside withLocalStack.
 */
export async function runEventsDemo(opts: EventsDemoOptions = {}): Promise<EventsDemoResult> {
  const t0 = Date.now();
  const log = (line: string) => opts.log?.(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
  const n = Math.max(1, opts.events ?? 1000);
  const dupPct = Math.max(0, opts.duplicates ?? 10);
  const badPct = Math.max(0, opts.malformed ?? 2);
  const entities = Math.max(1, opts.entities ?? Math.ceil(n / 20));
  const rnd = rng(opts.seed ?? 42);

  const target = opts.target ?? (await localEventsTarget(opts.deployment));
  log(`resources ready: table ${target.table}, queue ${target.queueUrl}`);
  const events = generateEvents(n, entities, rnd);
  const deliveries = [...events];
  const dupCount = Math.round((n * dupPct) / 100);
  for (let i = 0; i < dupCount; i++) deliveries.push(events[Math.floor(rnd() * n)]!);
  if (opts.shuffle) {
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
    }
  }
  const lines = deliveries.map(serializeEvent);
  const badCount = Math.round((n * badPct) / 100);
  const direct: string[] = [];
  for (let i = 0; i < badCount; i++) {
    const bad = POISON[i % POISON.length]!(i);
    if (i % 2 === 0) lines.splice(Math.floor(rnd() * (lines.length + 1)), 0, bad);
    else direct.push(bad);
  }
  log(
    `events demo: ${n} events over ${entities} entities, ${dupCount} duplicates, ${badCount} malformed, ${opts.shuffle ? "shuffled" : "in order"}`,
  );

  const accept = await startLocalAccept(target.queueUrl);
  const consumer = await startLocalConsumer(target);
  let sent: SendSummary;
  try {
    const sendT0 = Date.now();
    sent = await postEvents(accept.url, lines, { concurrency: 4 });
    log(
      `sent ${lines.length} lines in ${sent.requests} requests (${Date.now() - sendT0} ms): ${sent.accepted} accepted, ${sent.rejected} rejected, ${sent.failed} failed`,
    );
    // producers may also write straight to SQS: these skip accept's validation and meet the consumer's
    for (let i = 0; i < direct.length; i += 10) {
      await sqs().send(
        new SendMessageBatchCommand({
          QueueUrl: target.queueUrl,
          Entries: direct.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
        }),
      );
    }
    const expectedFinal = sent.accepted + direct.length;
    const deadline = Date.now() + 120_000 + n * 20;
    let lastLog = 0;
    for (;;) {
      const c = consumer.counts;
      const done = c.applied + c.duplicate + c.stale + c.parked;
      if (done >= expectedFinal) break;
      if (Date.now() > deadline) break;
      if (Date.now() - lastLog > 2000) {
        log(`consumed ${done}/${expectedFinal}`);
        lastLog = Date.now();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await consumer.drained(30_000).catch(() => {});
  } finally {
    await consumer.stop();
    await accept.close();
  }
  const seconds = (Date.now() - t0) / 1000;
  const q = await queueCounts(target.queueUrl);
  const dlq = await queueCounts(target.dlqUrl);

  // verify against the model
  const model = expectedStates(events);
  const samples: string[] = [];
  let mismatches = 0;
  const entries = [...model.values()];
  let idx = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (idx < entries.length) {
        const want = entries[idx++]!;
        let got: EntityState | null = null;
        try {
          got = await getEntityState(want.entity, { table: target.table, historyLimit: Number.MAX_SAFE_INTEGER });
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
        const d = diffState(want, got);
        if (d.length) {
          mismatches++;
          if (samples.length < 5) samples.push(...d.slice(0, 1));
        }
      }
    }),
  );
  const c = consumer.counts;
  const conserved = c.applied + c.duplicate + c.stale + c.parked === sent.accepted + direct.length;
  if (!conserved) {
    mismatches++;
    samples.push(
      `conservation: accepted ${sent.accepted} + direct ${direct.length} != applied ${c.applied} + duplicate ${c.duplicate} + stale ${c.stale} + parked ${c.parked}`,
    );
  }
  const inFlight = q.visible + q.inFlight + q.delayed;
  if (inFlight > 0) {
    mismatches++;
    samples.push(`${inFlight} messages still in the queue`);
  }
  if (sent.failed > 0) {
    mismatches++;
    samples.push(`${sent.failed} events could not be queued`);
  }
  return {
    ok: mismatches === 0,
    mismatches,
    mismatchSamples: samples,
    events: n,
    distinct: events.length,
    entities: model.size,
    sent: lines.length + direct.length,
    accepted: sent.accepted,
    rejected: sent.rejected,
    direct: direct.length,
    applied: c.applied,
    duplicate: c.duplicate,
    stale: c.stale,
    parked: c.parked,
    failedAttempts: c.failedAttempts,
    inFlight,
    dlqDepth: dlq.visible + dlq.inFlight,
    seconds,
    eventsPerSec: Math.round((sent.accepted + direct.length) / Math.max(seconds, 1e-3)),
    acceptP50Ms: Math.round(percentile(sent.latenciesMs, 50) * 10) / 10,
    acceptP99Ms: Math.round(percentile(sent.latenciesMs, 99) * 10) / 10,
  };
}

// ------------------------------------------------------------------------------------------------ commands

interface TargetOpts {
  aws?: boolean;
  stack?: string;
  json?: boolean;
}

async function withTarget<T>(o: TargetOpts, fn: (t: EventsTarget, local: boolean) => Promise<T>): Promise<T> {
  if (o.aws) return fn(await awsEventsTarget(o.stack ?? process.env.FERRY_STACK_NAME ?? "Ferry"), false);
  const { withLocalStack } = await import("../../local/stack/index.js");
  return withLocalStack(async () => fn(await localEventsTarget(), true));
}

const out = (o: TargetOpts, json: unknown, text: string) =>
  process.stdout.write(o.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
const progress = (line: string) => process.stderr.write(`${line}\n`);

const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`--${name}: expected a non-negative number, got "${v}"`);
  return n;
};

/** Consume on the local stack until the queue is empty (the local stack has no always-on Lambda service). */
async function drainLocally(t: EventsTarget, expected: number): Promise<OutcomeCounts> {
  const consumer = await startLocalConsumer(t);
  try {
    const deadline = Date.now() + 120_000 + expected * 20;
    while (Date.now() < deadline) {
      const c = consumer.counts;
      if (c.applied + c.duplicate + c.stale + c.parked >= expected) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await consumer.drained(30_000).catch(() => {});
  } finally {
    await consumer.stop();
  }
  return consumer.counts;
}

export function registerEvents(program: Command): void {
  const events = program.command("events").description("event ingestion: send events, read entity state, demo");

  events
    .command("send")
    .description("send events (JSONL) through the HTTP accept endpoint")
    .requiredOption("--file <F.jsonl>", "one event per line: {entity, id, time, type, payload}")
    .option("--rate <N>", "events per second (default: as fast as accepted)", intArg("rate"))
    .option("--no-consume", "local stack: only queue the events (default: run the consumer until the queue drains)")
    .option("--aws", "the deployed stack (sign requests with your AWS credentials)")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "one JSON object on stdout")
    .action(async (o: TargetOpts & { file: string; rate?: number; consume: boolean }) => {
      let text: string;
      try {
        text = readFileSync(o.file, "utf8");
      } catch (err) {
        throw new InputError(`${o.file}: cannot read (${(err as Error).message})`, { source: o.file });
      }
      const lines = text.split("\n").filter((l) => l.trim() !== "");
      if (lines.length === 0) throw new InputError(`${o.file}: no events`, { source: o.file });
      const result = await withTarget(o, async (t, local) => {
        let url = t.acceptUrl;
        let signer: ((req: Request) => Promise<Request>) | undefined;
        let accept: LocalAccept | undefined;
        if (local) {
          accept = await startLocalAccept(t.queueUrl);
          url = accept.url;
        } else {
          signer = await makeSigV4Signer();
        }
        const t0 = Date.now();
        try {
          const s = await postEvents(url!, lines, { rate: o.rate, signer });
          for (const r of s.rejects.slice(0, 20)) progress(`${o.file} line ${r.line}: rejected: ${r.reason}`);
          const counts = local && o.consume && s.accepted > 0 ? await drainLocally(t, s.accepted) : undefined;
          return {
            file: o.file,
            lines: lines.length,
            requests: s.requests,
            accepted: s.accepted,
            rejected: s.rejected,
            failed: s.failed,
            seconds: (Date.now() - t0) / 1000,
            acceptP50Ms: Math.round(percentile(s.latenciesMs, 50) * 10) / 10,
            acceptP99Ms: Math.round(percentile(s.latenciesMs, 99) * 10) / 10,
            ...(counts ?? {}),
            rejects: s.rejects,
          };
        } finally {
          await accept?.close();
        }
      });
      out(
        o,
        result,
        `${result.accepted} accepted, ${result.rejected} rejected, ${result.failed} failed (${result.requests} requests, p99 ${result.acceptP99Ms} ms)` +
          ("applied" in result
            ? `; consumed: ${result.applied} applied, ${result.duplicate} duplicate, ${result.stale} stale, ${result.parked} parked`
            : ""),
      );
      if (result.failed > 0) process.exitCode = 1;
    });

  events
    .command("state")
    .description("the stored state of one entity: latest event and history")
    .argument("<KEY>", "entity key")
    .option("--aws", "the deployed stack")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "one JSON object on stdout")
    .action(async (key: string, o: TargetOpts) => {
      const state = await withTarget(o, (t) => getEntityState(key, { table: t.table }));
      if (o.json) out(o, state, "");
      else {
        const l = state.latest;
        const lines = [
          `entity ${state.entity}`,
          `latest: ${l ? `${new Date(l.time).toISOString()} ${l.id} ${l.type} ${JSON.stringify(l.payload)}` : "(none)"}`,
          `history (${state.history.length}):`,
          ...state.history.map(
            (e) => `  ${new Date(e.time).toISOString()} ${e.id} ${e.type} ${JSON.stringify(e.payload)}`,
          ),
        ];
        out(o, state, lines.join("\n"));
      }
    });

  events
    .command("demo")
    .description("duplicates + shuffling + malformed events through accept → SQS → consume; checks the final state")
    .option("--events <N>", "events to generate", intArg("events"), 1000)
    .option("--duplicates <PCT>", "extra duplicate deliveries, percent", intArg("duplicates"), 10)
    .option("--shuffle", "deliver in random order")
    .option("--malformed <PCT>", "malformed events, percent", intArg("malformed"), 2)
    .option("--seed <N>", "random seed", intArg("seed"), 42)
    .option("--json", "one JSON object on stdout")
    .action(
      async (o: {
        events: number;
        duplicates: number;
        shuffle?: boolean;
        malformed: number;
        seed: number;
        json?: boolean;
      }) => {
        const { withLocalStack } = await import("../../local/stack/index.js");
        const r = await withLocalStack(() =>
          runEventsDemo({
            events: o.events,
            duplicates: o.duplicates,
            shuffle: !!o.shuffle,
            malformed: o.malformed,
            seed: o.seed,
            log: progress,
          }),
        );
        out(
          o,
          r,
          [
            `${r.ok ? "OK" : "FAILED"}: ${r.entities} entities verified against the in-order exactly-once model, ${r.mismatches} mismatches`,
            `accepted ${r.accepted} (+${r.direct} straight to SQS), rejected ${r.rejected}`,
            `applied ${r.applied}, duplicate ${r.duplicate}, stale ${r.stale}, parked ${r.parked} (failed attempts ${r.failedAttempts})`,
            `${r.seconds.toFixed(1)} s, ${r.eventsPerSec} events/s, accept p50 ${r.acceptP50Ms} ms p99 ${r.acceptP99Ms} ms`,
            ...r.mismatchSamples.map((s) => `  ${s}`),
          ].join("\n"),
        );
        if (!r.ok) process.exitCode = 1;
      },
    );

  const dlq = program.command("dlq").description("the events dead-letter queue: list, redrive");
  dlq
    .command("list")
    .description("messages in the DLQ with the reason they were parked (not consumed by listing)")
    .option("--aws", "the deployed stack")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "one JSON object on stdout")
    .action(async (o: TargetOpts) => {
      const msgs = await withTarget(o, (t) => listDlq(t.dlqUrl));
      const byReason: Record<string, number> = {};
      for (const m of msgs) byReason[m.reason] = (byReason[m.reason] ?? 0) + 1;
      out(
        o,
        { count: msgs.length, byReason, messages: msgs.map((m) => ({ ...m, body: m.body.slice(0, 2000) })) },
        msgs.length === 0
          ? "DLQ is empty"
          : [
              `${msgs.length} messages in the DLQ`,
              ...msgs.map((m) => `  ${m.messageId}  ${m.reason}  ${m.body.slice(0, 120)}`),
            ].join("\n"),
      );
    });
  dlq
    .command("redrive")
    .description("move the DLQ's messages back to the events queue (fixed ones apply once; poison is parked again)")
    .option("--no-consume", "local stack: only move them (default: run the consumer until the queue drains)")
    .option("--aws", "the deployed stack")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "one JSON object on stdout")
    .action(async (o: TargetOpts & { consume: boolean }) => {
      const r = await withTarget(o, async (t, local) => {
        const moved = await redriveDlq(t.dlqUrl, t.queueUrl);
        const counts = local && o.consume && moved.moved > 0 ? await drainLocally(t, moved.moved) : undefined;
        return { ...moved, ...(counts ?? {}) };
      });
      out(
        o,
        r,
        `moved ${r.moved} messages back to the events queue${r.failed ? `, ${r.failed} failed` : ""}` +
          ("applied" in r
            ? `; consumed: ${r.applied} applied, ${r.duplicate} duplicate, ${r.stale} stale, ${r.parked} parked again`
            : ""),
      );
      if (r.failed > 0) process.exitCode = 1;
    });
}

function toBytes(d: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof d === "string") return Buffer.from(d, "utf8");
  if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return new Uint8Array(d);
}

/** sha256 / HMAC-sha256 for the SigV4 signer, on node:crypto. */
class NodeSha256 {
  private h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  private readonly secret?: Uint8Array;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    if (secret !== undefined) this.secret = toBytes(secret);
    this.h = this.secret ? createHmac("sha256", this.secret) : createHash("sha256");
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.secret ? createHmac("sha256", this.secret) : createHash("sha256");
  }
}

/**
 * SigV4 signing (service "lambda") for the IAM-authenticated Function URL, with the SDK's default credential chain
 * and region. The caller needs lambda:InvokeFunctionUrl on the accept function.
 */
export async function makeSigV4Signer(): Promise<(req: Request) => Promise<Request>> {
  const { SignatureV4 } = await import("@smithy/signature-v4");
  const client = sqs();
  const region = await client.config.region();
  const signer = new SignatureV4({
    credentials: client.config.credentials,
    region,
    service: "lambda",
    sha256: NodeSha256,
  });
  return async (req: Request) => {
    const url = new URL(req.url);
    const body = await req.text();
    const headers: Record<string, string> = { host: url.host };
    req.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => {
      query[k] = v;
    });
    const signed = await signer.sign({
      method: req.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query,
      headers,
      body,
    });
    const out = new Headers();
    for (const [k, v] of Object.entries(signed.headers)) if (k !== "host") out.set(k, String(v));
    return new Request(req.url, { method: req.method, headers: out, body });
  };
}
