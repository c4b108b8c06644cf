/**
 * The embedded stack with DynamoDB Local as its DynamoDB stand-in (FERRY_LOCAL_DYNAMODB=dynamodb-local): it starts,
 * the events store's conditional writes classify the same way as on dynalite, and stopping the stack leaves no JVM.
 * Skips with a loud message when `java` is missing (the project does not install a JDK).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffState, expectedStates, type FerryEvent } from "../../core/events/model.js";
import { ensureEventsTable } from "../../core/events/resources.js";
import { applyEvent, getEntityState } from "../../core/events/store.js";
import { applyEnv, type LocalStack, startLocalStack } from "../../local/stack/index.js";

function javaAvailable(): boolean {
  try {
    const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, "bin", "java") : "java";
    execFileSync(java, ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const hasJava = javaAvailable();
if (!hasJava) {
  process.stderr.write(
    "\n!!! SKIPPED test/integration/events-dynamodb-local.test.ts: no `java` (Java 17+) on PATH or JAVA_HOME !!!\n\n",
  );
}

/** the pids of `pid`'s running children (from /proc) */
function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text ? text.split(" ").map(Number) : [];
  } catch {
    return [];
  }
}

describe.skipIf(!hasJava)("local stack with DynamoDB Local", () => {
  let stack: LocalStack;
  let stateDir: string;
  let restore: () => void = () => {};
  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "ferry-ddb-local-"));
    stack = await startLocalStack({ stateDir, dynamodb: "dynamodb-local" });
    restore = applyEnv(stack.env);
  }, 120_000);
  afterAll(async () => {
    restore();
    await stack?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("applies events with the same outcomes and final state as the model; stop leaves no JVM behind", async () => {
    expect(stack.emulators.dynamodb.emulator).toBe("dynamodb-local");
    const jvms = childrenOf(stack.emulators.dynamodb.pid);
    if (existsSync("/proc")) expect(jvms.length).toBe(1);
    const table = `ddb-local-${process.pid}`;
    await ensureEventsTable(table);
    const ev = (time: number, id: string, payload: unknown = { time, id }): FerryEvent => ({
      entity: "p1",
      id,
      time,
      type: "progress",
      payload,
    });
    const outcomes = [];
    for (const e of [ev(10, "b"), ev(10, "b"), ev(10, "a"), ev(5, "z"), ev(10, "c"), ev(10, "c", { other: 1 })]) {
      outcomes.push(await applyEvent(e, { table }));
    }
    expect(outcomes).toEqual(["applied", "duplicate", "stale", "stale", "applied", "duplicate"]);
    const want = expectedStates([ev(10, "b"), ev(10, "a"), ev(5, "z"), ev(10, "c")]).get("p1")!;
    const got = await getEntityState("p1", { table });
    expect(diffState(want, got)).toEqual([]);

    await stack.stop();
    for (const pid of jvms) {
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      expect(alive, `JVM ${pid} still running after stop`).toBe(false);
    }
  }, 120_000);
});
