/**
 * EventIngestion: Function URL (AWS_IAM) → accept → SQS queue (+ DLQ) → consume (SQS event source with partial
 * batch responses) → DynamoDB events table. Wiring only; the rules live in core/events. See docs/events.md.
 */
import { CfnOutput, Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { AttributeType, BillingMode, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import { FunctionUrlAuthType, type IFunction } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { ENV } from "../../core/env.js";
import { EVENTS } from "../../core/limits.js";
import { FerryFunction } from "./ferry-function.js";

export interface EventIngestionProps {
  /** FIFO queues (MessageGroupId = entity): strict per-entity order, the failing group skipped. Default false. */
  readonly fifo?: boolean;
  readonly batchSize?: number;
  readonly maxBatchingWindowSeconds?: number;
  readonly maxConcurrency?: number;
  readonly maxReceiveCount?: number;
  /** default RETAIN for the table (the data), DESTROY for nothing else to keep */
  readonly removalPolicy?: RemovalPolicy;
}

export class EventIngestion extends Construct {
  readonly table: Table;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly acceptFunction: FerryFunction;
  readonly consumeFunction: FerryFunction;
  readonly acceptUrl: string;
  readonly dlqDepthAlarm: Alarm;
  readonly queueAgeAlarm: Alarm;

  constructor(scope: Construct, id: string, props: EventIngestionProps = {}) {
    super(scope, id);
    const fifo = props.fifo ?? false;

    this.table = new Table(this, "Table", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      fifo: fifo || undefined,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(EVENTS.dlqRetentionDays),
    });
    // a DLQ has no DLQ of its own: its messages are listed and redriven by `ferry dlq`
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: "This queue IS the dead-letter queue of the events queue; it is drained by `ferry dlq redrive`.",
    });

    const timeout = Duration.seconds(EVENTS.consumerTimeoutSeconds);
    const maxReceiveCount = props.maxReceiveCount ?? EVENTS.maxReceiveCount;
    this.queue = new Queue(this, "Queue", {
      fifo: fifo || undefined,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(EVENTS.queueRetentionDays),
      // AWS: at least 6× the function timeout, so a batch being retried inside the function is not redelivered
      visibilityTimeout: Duration.seconds(EVENTS.consumerTimeoutSeconds * EVENTS.visibilityTimeoutFactor),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });

    this.acceptFunction = new FerryFunction(this, "Accept", {
      handlerFile: "events/accept.ts",
      description: "ferry events: validate a batch and queue it (Function URL, AWS_IAM)",
      timeout: Duration.seconds(15),
      memorySize: 512,
      environment: {
        [ENV.eventsQueueUrl]: this.queue.queueUrl,
        POWERTOOLS_SERVICE_NAME: "ferry-events",
      },
    });
    this.queue.grantSendMessages(this.acceptFunction);
    const url = this.acceptFunction.addFunctionUrl({ authType: FunctionUrlAuthType.AWS_IAM });
    this.acceptUrl = url.url;

    this.consumeFunction = new FerryFunction(this, "Consume", {
      handlerFile: "events/consume.ts",
      description: "ferry events: apply queued events to the events table (idempotent, order-insensitive)",
      timeout,
      memorySize: 1024,
      environment: {
        [ENV.eventsTable]: this.table.tableName,
        [ENV.eventsDlqUrl]: this.deadLetterQueue.queueUrl,
        POWERTOOLS_SERVICE_NAME: "ferry-events",
        POWERTOOLS_METRICS_NAMESPACE: "Ferry",
      },
    });
    // least privilege: the consumer only does conditional PutItem; parking sends to the DLQ
    this.table.grant(this.consumeFunction, "dynamodb:PutItem");
    this.deadLetterQueue.grantSendMessages(this.consumeFunction);
    this.consumeFunction.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: fifo ? Math.min(10, props.batchSize ?? 10) : (props.batchSize ?? EVENTS.consumerBatchSize),
        // batching windows are not supported on FIFO event sources
        maxBatchingWindow: fifo
          ? undefined
          : Duration.seconds(props.maxBatchingWindowSeconds ?? EVENTS.consumerBatchingWindowSeconds),
        maxConcurrency: props.maxConcurrency ?? EVENTS.consumerMaxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    for (const fn of [this.acceptFunction, this.consumeFunction]) acknowledgeFunctionFindings(fn);

    this.dlqDepthAlarm = new Alarm(this, "DlqDepthAlarm", {
      alarmDescription: "ferry events: messages in the DLQ (parked or failed repeatedly): `ferry dlq list`",
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
      threshold: EVENTS.dlqAlarmThreshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.queueAgeAlarm = new Alarm(this, "QueueAgeAlarm", {
      alarmDescription: "ferry events: the oldest queued event waits too long (consumers behind or failing)",
      metric: this.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1) }),
      threshold: EVENTS.queueAgeAlarmSeconds,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    new CfnOutput(this, "AcceptUrl", { key: "EventsAcceptUrl", value: url.url });
    new CfnOutput(this, "QueueUrl", { key: "EventsQueueUrl", value: this.queue.queueUrl });
    new CfnOutput(this, "DlqUrl", { key: "EventsDlqUrl", value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, "TableName", { key: "EventsTableName", value: this.table.tableName });
  }
}

/** Findings that come from FerryFunction's project-wide defaults, acknowledged per function with the reason. */
function acknowledgeFunctionFindings(fn: IFunction): void {
  const v = Validations.of(fn);
  v.acknowledge({
    id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    reason: "AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch logs.",
  });
  v.acknowledge({
    id: "AwsSolutions-IAM5[Resource::*]",
    reason:
      "The only wildcard is xray:PutTraceSegments/PutTelemetryRecords (active tracing), which have no resource-level scoping; queue and table grants name their ARNs.",
  });
  v.acknowledge({
    id: "AwsSolutions-L1",
    reason:
      "nodejs22.x is the project's pinned runtime (docs/design.md), supported by Lambda; upgrades are deliberate.",
  });
}
