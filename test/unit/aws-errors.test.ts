import { describe, expect, it } from "vitest";
import { isTransientAwsError, parseS3Uri, toFerryError, withRetries } from "../../core/aws/index.js";
import { ConfigError, ConflictError, NotFoundError, TransientError } from "../../core/errors.js";

const sdkError = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra });

describe("parseS3Uri", () => {
  it("splits bucket and key", () => {
    expect(parseS3Uri("s3://my-bucket/a/b/c.csv")).toEqual({ bucket: "my-bucket", key: "a/b/c.csv" });
    expect(parseS3Uri("s3://my-bucket")).toEqual({ bucket: "my-bucket", key: "" });
    expect(parseS3Uri("s3://my-bucket/")).toEqual({ bucket: "my-bucket", key: "" });
  });
  it("refuses what is not an S3 URI, naming it", () => {
    expect(() => parseS3Uri("/tmp/x")).toThrow(ConfigError);
    expect(() => parseS3Uri("http://b/x")).toThrow(/not an S3 URI: 'http:\/\/b\/x'/);
    expect(() => parseS3Uri("s3://B_ad/x")).toThrow(/not a valid bucket name/);
  });
});

describe("AWS error classification", () => {
  it("throttling, 5xx and dropped connections are transient", () => {
    expect(isTransientAwsError(sdkError("ThrottlingException", 400))).toBe(true);
    expect(isTransientAwsError(sdkError("ProvisionedThroughputExceededException", 400))).toBe(true);
    expect(isTransientAwsError(sdkError("SlowDown", 503))).toBe(true);
    expect(isTransientAwsError(sdkError("Whatever", 500))).toBe(true);
    expect(isTransientAwsError(Object.assign(new Error("socket"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransientAwsError(sdkError("AccessDenied", 403))).toBe(false);
    expect(isTransientAwsError(sdkError("ValidationException", 400))).toBe(false);
  });
  it("maps to typed errors naming the operation", () => {
    const c = toFerryError(sdkError("ConditionalCheckFailedException", 400), "PutItem t {pk}");
    expect(c).toBeInstanceOf(ConflictError);
    expect((c as Error).message).toMatch(/^PutItem t \{pk\}: ConditionalCheckFailedException/);
    expect(toFerryError(sdkError("NoSuchKey", 404), "GetObject s3://b/k")).toBeInstanceOf(NotFoundError);
    expect(toFerryError(sdkError("InternalError", 500), "x")).toBeInstanceOf(TransientError);
    const other = sdkError("AccessDenied", 403);
    expect(toFerryError(other, "x")).toBe(other);
  });
  it("withRetries retries transient failures only", async () => {
    let n = 0;
    const v = await withRetries(
      "op",
      async () => {
        n++;
        if (n < 3) throw sdkError("ThrottlingException", 400);
        return 42;
      },
      { baseDelayMs: 1 },
    );
    expect(v).toBe(42);
    expect(n).toBe(3);
    let m = 0;
    await expect(
      withRetries(
        "op",
        async () => {
          m++;
          throw sdkError("AccessDenied", 403);
        },
        { baseDelayMs: 1 },
      ),
    ).rejects.toThrow(/AccessDenied/);
    expect(m).toBe(1);
    await expect(
      withRetries(
        "op2",
        async () => {
          throw sdkError("InternalError", 500);
        },
        { attempts: 2, baseDelayMs: 1 },
      ),
    ).rejects.toBeInstanceOf(TransientError);
  });
});
