import { App, Stack, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { ENV } from "../../core/env.js";
import { EVENTS } from "../../core/limits.js";
import { EventIngestion, type EventIngestionProps } from "../../infra/constructs/event-ingestion.js";

function synth(props: EventIngestionProps = {}): Template {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new Stack(app, "T");
  new EventIngestion(stack, "Events", props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  // cdk-nag findings that are not acknowledged make synthesis fail
  app.synth();
  return Template.fromStack(stack);
}

describe("EventIngestion construct", () => {
  const t = synth();

  it("wires the SQS event source with partial batch responses, batching window and maximum concurrency", () => {
    t.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: EVENTS.consumerBatchSize,
      MaximumBatchingWindowInSeconds: EVENTS.consumerBatchingWindowSeconds,
      ScalingConfig: { MaximumConcurrency: EVENTS.consumerMaxConcurrency },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      EventSourceArn: { "Fn::GetAtt": [Match.stringLikeRegexp("EventsQueue"), "Arn"] },
    });
  });

  it("queue: encrypted, visibility ≥ 6× the consumer timeout, DLQ with maxReceiveCount; both enforce TLS", () => {
    t.hasResourceProperties("AWS::SQS::Queue", {
      SqsManagedSseEnabled: true,
      VisibilityTimeout: EVENTS.consumerTimeoutSeconds * 6,
      RedrivePolicy: {
        deadLetterTargetArn: { "Fn::GetAtt": [Match.stringLikeRegexp("DeadLetterQueue"), "Arn"] },
        maxReceiveCount: EVENTS.maxReceiveCount,
      },
    });
    const fns = t.findResources("AWS::Lambda::Function", {
      Properties: { Environment: { Variables: { [ENV.eventsTable]: Match.anyValue() } } },
    });
    const consume = Object.values(fns)[0] as { Properties: { Timeout: number } };
    expect(consume.Properties.Timeout).toBe(EVENTS.consumerTimeoutSeconds);
    expect(Object.keys(t.findResources("AWS::SQS::Queue"))).toHaveLength(2);
    t.resourceCountIs("AWS::SQS::QueuePolicy", 2);
    t.hasResourceProperties("AWS::SQS::QueuePolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("table: PITR and encryption; the consumer may only PutItem on it", () => {
    t.hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      BillingMode: "PAY_PER_REQUEST",
    });
    const policies = t.findResources("AWS::IAM::Policy");
    const ddbActions = Object.values(policies).flatMap((p) =>
      (
        p as { Properties: { PolicyDocument: { Statement: { Action: string | string[] }[] } } }
      ).Properties.PolicyDocument.Statement.flatMap((s) => [s.Action].flat().filter((a) => a.startsWith("dynamodb:"))),
    );
    expect(ddbActions).toEqual(["dynamodb:PutItem"]);
  });

  it("accept is behind a Function URL with AWS_IAM auth", () => {
    t.hasResourceProperties("AWS::Lambda::Url", { AuthType: "AWS_IAM" });
    t.hasOutput("EventsAcceptUrl", {});
    t.hasOutput("EventsQueueUrl", {});
    t.hasOutput("EventsDlqUrl", {});
    t.hasOutput("EventsTableName", {});
  });

  it("alarms on DLQ depth and on the age of the oldest queued event", () => {
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateNumberOfMessagesVisible",
      Namespace: "AWS/SQS",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateAgeOfOldestMessage",
      Threshold: EVENTS.queueAgeAlarmSeconds,
    });
  });

  it("FIFO option: FIFO queue and DLQ, batch ≤ 10, no batching window", () => {
    const f = synth({ fifo: true });
    f.resourcePropertiesCountIs("AWS::SQS::Queue", { FifoQueue: true }, 2);
    f.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: Match.absent(),
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });
});
