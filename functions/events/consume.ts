/**
 * consume — SQS event source (ReportBatchItemFailures). Powertools BatchProcessor reports only the failed records;
 * on FIFO queues SqsFifoPartialProcessorAsync with skipGroupOnError fails just the failing entity's group.
 * Thin: per record call core/events/consume, count outcomes, emit metrics (applied, duplicate, stale, parked,
 * failed, lag from SentTimestamp).
 */
import {
  BatchProcessor,
  EventType,
  processPartialResponse,
  SqsFifoPartialProcessorAsync,
} from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { ENV, requireEnv } from "../../core/env.js";
import { BatchApplyPlan, type ConsumeDeps, type ConsumeResult, consumeMessage } from "../../core/events/consume.js";

export interface ConsumeHandlerOptions extends Partial<ConsumeDeps> {
  /** called once per record with its outcome, or with `failed` when the record will be retried */
  onResult?: (r: ConsumeResult | { outcome: "failed"; reason: string }, record: SQSRecord) => void;
}

const logger = new Logger({ serviceName: "ferry-events" });
const metrics = new Metrics({ namespace: "Ferry", serviceName: "ferry-events" });

export function createConsumeHandler(opts: ConsumeHandlerOptions = {}) {
  return async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    const deps: ConsumeDeps = {
      table: opts.table ?? requireEnv(ENV.eventsTable),
      dlqUrl: opts.dlqUrl ?? requireEnv(ENV.eventsDlqUrl),
      dynamo: opts.dynamo,
      sqs: opts.sqs,
    };
    const counts = { applied: 0, duplicate: 0, stale: 0, parked: 0, failed: 0 };
    let maxLagMs = 0;
    const now = Date.now();
    const fifo = (event.Records[0]?.eventSourceARN ?? "").endsWith(".fifo");
    // standard queues: records run concurrently and share one plan (one `latest` write per entity per batch);
    // FIFO: records run one after another, each applied on its own
    const plan = fifo
      ? undefined
      : new BatchApplyPlan(
          event.Records.map((r) => ({ messageId: r.messageId, body: r.body })),
          deps,
        );
    const recordHandler = async (record: SQSRecord): Promise<void> => {
      const sent = Number(record.attributes?.SentTimestamp ?? now);
      maxLagMs = Math.max(maxLagMs, now - sent);
      try {
        const msg = { messageId: record.messageId, body: record.body };
        const r = plan ? await plan.consume(msg) : await consumeMessage(msg, deps);
        counts[r.outcome]++;
        if (r.outcome === "parked")
          logger.warn("parked poison message", { messageId: record.messageId, reason: r.reason });
        opts.onResult?.(r, record);
      } catch (err) {
        counts.failed++;
        const reason = (err as Error).message;
        logger.warn("record failed, SQS will retry it", { messageId: record.messageId, reason });
        opts.onResult?.({ outcome: "failed", reason }, record);
        throw err;
      }
    };
    // one processor per invocation: processors keep per-batch state, and the local event source may run
    // several invocations concurrently in one process
    const res = fifo
      ? await processPartialResponse(event, recordHandler, new SqsFifoPartialProcessorAsync(), {
          context,
          skipGroupOnError: true,
          throwOnFullBatchFailure: false,
        })
      : await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
          context,
          throwOnFullBatchFailure: false,
        });
    for (const [name, n] of Object.entries(counts)) if (n > 0) metrics.addMetric(name, MetricUnit.Count, n);
    metrics.addMetric("lagMs", MetricUnit.Milliseconds, maxLagMs);
    metrics.publishStoredMetrics();
    return res;
  };
}

export const handler = createConsumeHandler();
