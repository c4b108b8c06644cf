/**
 * BulkLoadTriggers: EventBridge rules that start the bulk-load state machine.
 *
 * - a schedule rule per dataset config with a `schedule` (rate(...) / cron(...));
 * - an S3 "Object Created" rule per dataset config whose input is in the data bucket: the marker object
 *   (`_SUCCESS` by default) landing under the input prefix starts a load of that folder.
 *
 * The execution input is `{dataset, config, trigger: {kind, time, bucket?, key?}}`; Plan derives the version (the
 * marker's folder name when it is a valid version, else the event time as 20261122T021500Z) and the input prefix
 * (core/pipeline/config.ts requestFromTrigger). Starting the same version twice is a no-op at Plan (conditional
 * registration), so EventBridge's at-least-once delivery is harmless. No business logic here.
 */
import { Duration } from "aws-cdk-lib";
import { EventField, Rule, RuleTargetInput, Schedule } from "aws-cdk-lib/aws-events";
import { SfnStateMachine } from "aws-cdk-lib/aws-events-targets";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";

/** One dataset's load settings as in core/pipeline/config.ts (validated again by Plan at run time). */
export interface TriggerDatasetConfig {
  readonly dataset: string;
  /** s3://bucket/prefix/ */
  readonly input: string;
  readonly schedule?: string;
  /** object name whose arrival starts a load (default _SUCCESS); set `onMarker: false` to disable */
  readonly marker?: string;
  readonly onMarker?: boolean;
  readonly [setting: string]: unknown;
}

export interface BulkLoadTriggersProps {
  readonly stateMachine: IStateMachine;
  /** the bucket whose EventBridge notifications are on (the pipeline's data bucket) */
  readonly dataBucket: IBucket;
  /** another name that means the data bucket in dataset configs (besides `data`) */
  readonly dataBucketAlias?: string;
  readonly datasets: TriggerDatasetConfig[];
}

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const SCHEDULE_RE = /^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\([^)]+\))$/;
/** in dataset configs, s3://data/... means the pipeline's data bucket */
export const DATA_BUCKET_ALIAS = "data";
const S3_RE = /^s3:\/\/([^/]+)\/?(.*)$/;

/** The config as the trigger passes it to Plan: everything but the trigger-only settings. */
export function loadConfigOf(d: TriggerDatasetConfig): Record<string, unknown> {
  const { schedule: _s, marker: _m, onMarker: _o, ...rest } = d;
  return rest;
}

export class BulkLoadTriggers extends Construct {
  readonly scheduleRules: Record<string, Rule> = {};
  readonly markerRules: Record<string, Rule> = {};

  constructor(scope: Construct, id: string, props: BulkLoadTriggersProps) {
    super(scope, id);
    for (const d of props.datasets) {
      if (!NAME_RE.test(d.dataset)) throw new Error(`trigger config: dataset '${d.dataset}' is not a valid name`);
      const m = S3_RE.exec(d.input);
      if (!m) throw new Error(`trigger config for ${d.dataset}: input '${d.input}' is not an s3:// URI`);
      const inDataBucket = m[1] === props.dataBucketAlias || m[1] === DATA_BUCKET_ALIAS;
      // `s3://data/...` names the pipeline's data bucket, whose real name is known only at deploy time
      const config = inDataBucket
        ? { ...loadConfigOf(d), input: `s3://${props.dataBucket.bucketName}/${m[2]}` }
        : loadConfigOf(d);
      const idPart = d.dataset.replace(/[^a-zA-Z0-9]/g, "");

      if (d.schedule !== undefined) {
        if (!SCHEDULE_RE.test(d.schedule)) {
          throw new Error(`trigger config for ${d.dataset}: schedule '${d.schedule}' is not rate(...) or cron(...)`);
        }
        const rule = new Rule(this, `Schedule${idPart}`, {
          description: `ferry: scheduled bulk load of ${d.dataset}`,
          schedule: Schedule.expression(d.schedule),
        });
        rule.addTarget(
          new SfnStateMachine(props.stateMachine, {
            input: RuleTargetInput.fromObject({
              dataset: d.dataset,
              config,
              trigger: { kind: "schedule", time: EventField.time },
            }),
            retryAttempts: 4,
            maxEventAge: Duration.hours(2),
          }),
        );
        this.scheduleRules[d.dataset] = rule;
      }

      if (d.onMarker !== false && inDataBucket) {
        const prefix = m[2] === "" || m[2].endsWith("/") ? m[2] : `${m[2]}/`;
        const marker = d.marker ?? "_SUCCESS";
        const rule = new Rule(this, `Marker${idPart}`, {
          description: `ferry: bulk load of ${d.dataset} when ${marker} lands under ${prefix}`,
          eventPattern: {
            source: ["aws.s3"],
            detailType: ["Object Created"],
            detail: {
              bucket: { name: [props.dataBucket.bucketName] },
              // the marker directly under the prefix, or in a folder below it (the folder names the version)
              object: { key: [`${prefix}${marker}`, { wildcard: `${prefix}*/${marker}` }] },
            },
          },
        });
        rule.addTarget(
          new SfnStateMachine(props.stateMachine, {
            input: RuleTargetInput.fromObject({
              dataset: d.dataset,
              config,
              trigger: {
                kind: "object-created",
                time: EventField.time,
                bucket: EventField.fromPath("$.detail.bucket.name"),
                key: EventField.fromPath("$.detail.object.key"),
              },
            }),
            retryAttempts: 4,
            maxEventAge: Duration.hours(2),
          }),
        );
        this.markerRules[d.dataset] = rule;
      }
    }
  }
}
