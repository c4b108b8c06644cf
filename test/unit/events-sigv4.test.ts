import { describe, expect, it } from "vitest";
import { makeSigV4Signer } from "../../cli/commands/events.js";

describe("events send --aws: SigV4 signing for the IAM Function URL", () => {
  it("signs for service lambda with the default credentials and region, keeping the body", async () => {
    const saved = { ...process.env };
    process.env.AWS_ACCESS_KEY_ID = "AKIDEXAMPLE";
    process.env.AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    process.env.AWS_REGION = "eu-west-1";
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    try {
      const sign = await makeSigV4Signer();
      const req = await sign(
        new Request("https://abc.lambda-url.eu-west-1.on.aws/?x=1", {
          method: "POST",
          headers: { "content-type": "application/x-ndjson" },
          body: '{"entity":"p"}',
        }),
      );
      const auth = req.headers.get("authorization") ?? "";
      expect(auth).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
      );
      expect(req.headers.get("x-amz-date")).toMatch(/^\d{8}T\d{6}Z$/);
      expect(await req.text()).toBe('{"entity":"p"}');
    } finally {
      process.env = saved;
    }
  });
});
