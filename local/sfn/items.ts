/**
 * Distributed Map I/O on the local S3: ItemReader (ListObjectsV2 listing; JSON array / JSONL / CSV objects via
 * s3:getObject with ReaderConfig.InputType), ItemBatcher (MaxItemsPerBatch, MaxInputBytesPerBatch, BatchInput) and
 * ResultWriter (manifest.json + SUCCEEDED_0.json / FAILED_0.json under <Prefix>/<map run id>/, like the service).
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { parse as parseCsv } from "csv-parse/sync";
import { ConfigError, InputError, LimitError } from "../../core/errors.js";
import { localClients } from "../deploy/clients.js";
import type { AslState } from "./asl.js";
import { evaluateTemplate, selectPath } from "./paths.js";

const S3_ARN = /^arn:[^:]+:states:::s3:(listObjectsV2|getObject)$/;

/** Read the items of a Map state's ItemReader. `input` is the Map's effective input (after InputPath). */
export async function readItems(
  stateName: string,
  reader: AslState,
  input: unknown,
  context: unknown,
): Promise<unknown[]> {
  const m = S3_ARN.exec(String(reader.Resource));
  if (!m) {
    throw new ConfigError(`Map state ${stateName}: ItemReader resource ${reader.Resource} is not supported locally`, {
      field: `${stateName}.ItemReader.Resource`,
    });
  }
  const params = (reader.Parameters ? await evaluateTemplate(reader.Parameters, input, context) : {}) as Record<
    string,
    string
  >;
  const cfg = (reader.ReaderConfig ?? {}) as Record<string, unknown>;
  const maxItems = cfg.MaxItems !== undefined ? Number(cfg.MaxItems) : undefined;
  const { s3 } = localClients();
  let items: unknown[];
  if (m[1] === "listObjectsV2") {
    items = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: params.Bucket, Prefix: params.Prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        items.push({
          Etag: o.ETag,
          Key: o.Key,
          LastModified: o.LastModified ? Math.floor(o.LastModified.getTime() / 1000) : undefined,
          Size: o.Size,
          StorageClass: o.StorageClass ?? "STANDARD",
        });
        if (maxItems !== undefined && items.length >= maxItems) break;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token && (maxItems === undefined || items.length < maxItems));
  } else {
    const source = `s3://${params.Bucket}/${params.Key}`;
    const obj = await s3.send(new GetObjectCommand({ Bucket: params.Bucket, Key: params.Key }));
    const text = (await obj.Body?.transformToString("utf8")) ?? "";
    const type = String(cfg.InputType ?? "JSON");
    if (type === "JSON") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new InputError(`${source}: not JSON (${(e as Error).message})`, { source });
      }
      if (!Array.isArray(parsed)) throw new InputError(`${source}: ItemReader JSON input must be an array`, { source });
      items = parsed;
    } else if (type === "JSONL") {
      items = [];
      const lines = text.split("\n");
      for (let i = 0; i < lines.length; i++) {
        const line = (lines[i] as string).trim();
        if (!line) continue;
        try {
          items.push(JSON.parse(line));
        } catch (e) {
          throw new InputError(`${source} line ${i + 1}: not JSON (${(e as Error).message})`, { source, line: i + 1 });
        }
      }
    } else if (type === "CSV") {
      const delimiters: Record<string, string> = { COMMA: ",", PIPE: "|", SEMICOLON: ";", SPACE: " ", TAB: "\t" };
      const delimiter = delimiters[String(cfg.CSVDelimiter ?? "COMMA")] ?? ",";
      const rows = parseCsv(text, { delimiter, relax_column_count: true, skip_empty_lines: true }) as string[][];
      let headers: string[];
      if ((cfg.CSVHeaderLocation ?? "FIRST_ROW") === "FIRST_ROW") headers = rows.shift() ?? [];
      else headers = (cfg.CSVHeaders as string[] | undefined) ?? [];
      items = rows.map((row) => Object.fromEntries(headers.map((h, i) => [h, row[i] ?? ""])));
    } else {
      throw new ConfigError(`Map state ${stateName}: ItemReader InputType ${type} is not supported locally`, {
        field: `${stateName}.ItemReader.ReaderConfig.InputType`,
      });
    }
    if (maxItems !== undefined) items = items.slice(0, maxItems);
  }
  return items;
}

/** Group items into batches: `{Items: [...], BatchInput?}` per child execution. */
export async function batchItems(
  stateName: string,
  batcher: AslState,
  items: unknown[],
  input: unknown,
  context: unknown,
): Promise<unknown[]> {
  let perBatch = Number(batcher.MaxItemsPerBatch ?? 0);
  if (batcher.MaxItemsPerBatchPath) perBatch = Number(await selectPath(batcher.MaxItemsPerBatchPath, input, context));
  const maxBytes = Number(batcher.MaxInputBytesPerBatch ?? 256 * 1024);
  const batchInput = batcher.BatchInput ? await evaluateTemplate(batcher.BatchInput, input, context) : undefined;
  const baseBytes = batchInput === undefined ? 20 : JSON.stringify(batchInput).length + 30;
  const out: unknown[] = [];
  let cur: unknown[] = [];
  let bytes = baseBytes;
  const flush = () => {
    if (!cur.length) return;
    out.push(batchInput === undefined ? { Items: cur } : { Items: cur, BatchInput: batchInput });
    cur = [];
    bytes = baseBytes;
  };
  for (const item of items) {
    const size = JSON.stringify(item).length + 1;
    if (baseBytes + size > maxBytes) {
      throw new LimitError(
        `Map state ${stateName}: one item (${size} bytes) exceeds MaxInputBytesPerBatch ${maxBytes}`,
        {
          limit: "MaxInputBytesPerBatch",
          max: maxBytes,
          actual: size,
        },
      );
    }
    if ((perBatch > 0 && cur.length >= perBatch) || bytes + size > maxBytes) flush();
    cur.push(item);
    bytes += size;
  }
  flush();
  return out;
}

export interface ChildResult {
  index: number;
  name: string;
  executionArn: string;
  input: unknown;
  status: "SUCCEEDED" | "FAILED";
  output?: unknown;
  error?: string;
  cause?: string;
  startDate: Date;
  stopDate: Date;
}

/** Write the results like the service does and return the Map output `{MapRunArn, ResultWriterDetails}`. */
export async function writeResults(
  stateName: string,
  writer: AslState,
  mapRunArn: string,
  mapRunId: string,
  stateMachineArn: string,
  results: ChildResult[],
  input: unknown,
  context: unknown,
): Promise<{ MapRunArn: string; ResultWriterDetails: { Bucket: string; Key: string } }> {
  const params = (writer.Parameters ? await evaluateTemplate(writer.Parameters, input, context) : {}) as Record<
    string,
    string
  >;
  if (!params.Bucket) {
    throw new ConfigError(`Map state ${stateName}: ResultWriter needs Parameters.Bucket`, {
      field: `${stateName}.ResultWriter`,
    });
  }
  const cfg = (writer.WriterConfig ?? {}) as { Transformation?: string; OutputType?: string };
  const transformation = cfg.Transformation ?? "NONE";
  const jsonl = cfg.OutputType === "JSONL";
  const prefix = params.Prefix ? `${String(params.Prefix).replace(/\/+$/, "")}/` : "";
  const base = `${prefix}${mapRunId}/`;
  const { s3 } = localClients();
  const files: Record<"SUCCEEDED" | "FAILED" | "PENDING", { Key: string; Size: number }[]> = {
    FAILED: [],
    PENDING: [],
    SUCCEEDED: [],
  };
  for (const status of ["SUCCEEDED", "FAILED"] as const) {
    const group = results.filter((r) => r.status === status).sort((a, b) => a.index - b.index);
    if (!group.length) continue;
    const records: unknown[] = [];
    for (const r of group) {
      if (status === "SUCCEEDED" && transformation === "FLATTEN" && Array.isArray(r.output)) records.push(...r.output);
      else if (status === "SUCCEEDED" && transformation !== "NONE") records.push(r.output);
      else records.push(executionRecord(r, stateMachineArn));
    }
    const body = jsonl ? `${records.map((x) => JSON.stringify(x)).join("\n")}\n` : JSON.stringify(records);
    const Key = `${base}${status}_0.json`;
    await s3.send(new PutObjectCommand({ Bucket: params.Bucket, Key, Body: body, ContentType: "application/json" }));
    files[status].push({ Key, Size: Buffer.byteLength(body) });
  }
  const manifest = { DestinationBucket: params.Bucket, MapRunArn: mapRunArn, ResultFiles: files };
  const Key = `${base}manifest.json`;
  await s3.send(
    new PutObjectCommand({
      Bucket: params.Bucket,
      Key,
      Body: JSON.stringify(manifest),
      ContentType: "application/json",
    }),
  );
  return { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket: params.Bucket, Key } };
}

function executionRecord(r: ChildResult, stateMachineArn: string): Record<string, unknown> {
  const rec: Record<string, unknown> = {
    ExecutionArn: r.executionArn,
    Input: JSON.stringify(r.input),
    InputDetails: { Included: true },
    Name: r.name,
    RedriveCount: 0,
    RedriveStatus: "NOT_REDRIVABLE",
    RedriveStatusReason:
      r.status === "SUCCEEDED" ? "Execution is SUCCEEDED and cannot be redriven" : "Map Run is not redrivable locally",
    StartDate: r.startDate.toISOString(),
    StateMachineArn: stateMachineArn,
    Status: r.status,
    StopDate: r.stopDate.toISOString(),
  };
  if (r.status === "SUCCEEDED") {
    rec.Output = JSON.stringify(r.output);
    rec.OutputDetails = { Included: true };
  } else {
    rec.Error = r.error;
    rec.Cause = r.cause;
  }
  return rec;
}
