import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { s3 } from "../../core/aws/index.js";
import { EnvironmentError } from "../../core/errors.js";
import {
  findRunningStack,
  inspectStack,
  PROJECT_ROOT,
  pidAlive,
  startLocalStack,
  STATE_DIR_ENV,
  stopStack,
  withLocalStack,
} from "../../local/stack/index.js";

const run = promisify(execFile);
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "ferry-stack-test-"));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) {
    await stopStack(d).catch(() => {}); // a test that timed out must not leave a detached stack behind
    rmSync(d, { recursive: true, force: true });
  }
});

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

describe("local stack", () => {
  it("starts when the requested ports are taken (each falls back to a free port)", async () => {
    const taken = await occupy();
    const dir = tempDir();
    const stack = await startLocalStack({
      stateDir: dir,
      ports: { s3: taken.port, dynamodb: taken.port, sqs: taken.port },
    });
    try {
      for (const svc of ["s3", "dynamodb", "sqs"] as const) {
        expect(stack.emulators[svc].port).not.toBe(taken.port);
        expect(stack.endpoints[svc]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      }
      expect(findRunningStack(dir)?.endpoints).toEqual(stack.endpoints);
      // a second start in the same state dir refuses, naming the running one
      await expect(startLocalStack({ stateDir: dir })).rejects.toThrow(/already running in .*s3 http:\/\/127/);
    } finally {
      await stack.stop();
      taken.server.close();
    }
    for (const e of Object.values(stack.emulators)) expect(pidAlive(e.pid)).toBe(false);
    expect(findRunningStack(dir)).toBeUndefined();
  });

  it("a dead emulator: errors name it and its log", async () => {
    const dir = tempDir();
    const stack = await startLocalStack({ stateDir: dir });
    try {
      const sqs = stack.emulators.sqs;
      process.kill(sqs.pid, "SIGKILL");
      for (let i = 0; i < 100 && pidAlive(sqs.pid); i++) await new Promise((r) => setTimeout(r, 20));
      expect(() => stack.check()).toThrow(EnvironmentError);
      expect(() => stack.check()).toThrow(`sqs emulator (fauxqs, pid ${sqs.pid}`);
      expect(() => stack.check()).toThrow(`its log: ${join(dir, "logs", "sqs.log")}`);
      expect(() => findRunningStack(dir)).toThrow(/sqs emulator \(fauxqs.*is not running; its log: .*sqs\.log/);
      expect(inspectStack(dir)?.dead.map((e) => e.service)).toEqual(["sqs"]);
      // a command run against it fails naming the emulator, not with a bare ECONNREFUSED
      await expect(withLocalStack(async () => "never", { stateDir: dir })).rejects.toThrow(/sqs emulator/);
    } finally {
      await stack.stop();
    }
    expect(pidAlive(stack.emulators.s3.pid)).toBe(false);
  });

  it("an emulator that cannot start: the error names it and its log, and the others are stopped", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "s3"), "not a directory"); // s3rver's data dir
    const err = await startLocalStack({ stateDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as Error).message).toMatch(/s3 emulator \(s3rver\) exited during start .*its log: .*logs\/s3\.log/);
    expect(inspectStack(dir)).toBeUndefined(); // no state file for a stack that never came up
  });

  it("withLocalStack uses the running stack, else starts one for the call and stops it", async () => {
    // the test run's stack is the running one (FERRY_LOCAL_DIR from test/setup-env.ts)
    const endpoint = process.env.AWS_ENDPOINT_URL_S3;
    await withLocalStack(async (stack) => {
      expect(stack.started).toBe(false);
      expect(stack.endpoints.s3).toBe(endpoint);
    });
    const empty = tempDir();
    let pids: number[] = [];
    const out = await withLocalStack(
      async (stack) => {
        expect(stack.started).toBe(true);
        expect(process.env.AWS_ENDPOINT_URL_S3).toBe(stack.endpoints.s3);
        pids = Object.values(stack.emulators).map((e) => e.pid);
        await s3().send(new CreateBucketCommand({ Bucket: "with-local-stack" }));
        await s3().send(new PutObjectCommand({ Bucket: "with-local-stack", Key: "k", Body: "v" }));
        const got = await s3().send(new GetObjectCommand({ Bucket: "with-local-stack", Key: "k" }));
        return got.Body!.transformToString();
      },
      { stateDir: empty },
    );
    expect(out).toBe("v");
    expect(process.env.AWS_ENDPOINT_URL_S3).toBe(endpoint); // env restored
    expect(pids.some((p) => pidAlive(p))).toBe(false);
  });

  it("ferry local up --detach; a plain SDK in another process via `ferry local env`; ferry local down", async () => {
    const dir = tempDir();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("AWS_")) env[k] = v;
    env[STATE_DIR_ENV] = dir;
    delete env.NODE_OPTIONS;
    const tsx = join(PROJECT_ROOT, "node_modules", "tsx", "dist", "cli.mjs");
    const ferry = (...args: string[]) =>
      run(process.execPath, [tsx, "cli/main.ts", ...args], { cwd: PROJECT_ROOT, env, timeout: 60_000 });

    const up = await ferry("local", "up", "--detach", "--ephemeral", "--json");
    const { endpoints } = JSON.parse(up.stdout) as { endpoints: Record<string, string> };
    try {
      const status = JSON.parse((await ferry("local", "status", "--json")).stdout);
      expect(status).toMatchObject({ running: true, healthy: true, detached: true, stateDir: dir });
      // a second `up` reuses it
      const again = await ferry("local", "up", "--detach", "--json");
      expect(JSON.parse(again.stdout).endpoints).toEqual(endpoints);
      expect(again.stderr).toMatch(/already running/);

      const script = `
        import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
        import { DynamoDBClient, CreateTableCommand, PutItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb";
        const s3 = new S3Client({});
        await s3.send(new CreateBucketCommand({ Bucket: "env-check" }));
        await s3.send(new PutObjectCommand({ Bucket: "env-check", Key: "a/b.txt", Body: "from another process" }));
        const o = await s3.send(new GetObjectCommand({ Bucket: "env-check", Key: "a/b.txt" }));
        const ddb = new DynamoDBClient({});
        await ddb.send(new CreateTableCommand({ TableName: "envcheck", BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }));
        await ddb.send(new PutItemCommand({ TableName: "envcheck", Item: { pk: { S: "k1" }, v: { N: "42" } } }));
        const it = await ddb.send(new GetItemCommand({ TableName: "envcheck", Key: { pk: { S: "k1" } } }));
        console.log(JSON.stringify({ s3: await o.Body.transformToString(), ddb: it.Item.v.N,
          s3Endpoint: process.env.AWS_ENDPOINT_URL_S3 }));
      `;
      const shell = `eval "$("${process.execPath}" "${tsx}" cli/main.ts local env)" && "${process.execPath}" --input-type=module -e "$FERRY_SCRIPT"`;
      const res = await run("bash", ["-c", shell], {
        cwd: PROJECT_ROOT,
        env: { ...env, FERRY_SCRIPT: script },
        timeout: 60_000,
      });
      const line = res.stdout.trim().split("\n").pop()!;
      expect(JSON.parse(line)).toEqual({ s3: "from another process", ddb: "42", s3Endpoint: endpoints.s3 });
    } finally {
      const pids = Object.values(inspectStack(dir)?.state.emulators ?? {}).map((e) => e.pid);
      const down = await ferry("local", "down");
      expect(down.stderr).toMatch(/stopped s3 \(s3rver, pid \d+\)/);
      expect(pids.length).toBe(3);
      expect(pids.some((p) => pidAlive(p))).toBe(false);
    }
    const after = await ferry("local", "env").catch((e: { code: number; stderr: string }) => e);
    expect((after as { code: number }).code).toBe(1);
    expect((after as { stderr: string }).stderr).toMatch(/no local stack is running/);
  }, 240_000); // six CLI processes: ~1 s each on an idle machine, 5+ s each on a loaded one
});
