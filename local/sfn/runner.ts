/**
 * The local Step Functions runner: executes a LocalDeployment's state machines (the CDK-synthesized ASL) with
 * aws-local-stepfunctions, every Lambda task mapped to its TypeScript handler in process.
 *
 * Every Map state (inline and Distributed) is run by this module, not by the library: before a definition runs,
 * each Map is rewritten into a Task (keeping InputPath, ResultSelector, ResultPath, OutputPath, Retry and Catch, so
 * the library still applies them) whose local handler reads the items (ItemsPath or ItemReader on the local S3),
 * applies ItemSelector and ItemBatcher, runs the ItemProcessor once per item/batch as its own state machine with
 * bounded concurrency (MaxConcurrency), enforces ToleratedFailurePercentage/Count and writes ResultWriter files.
 *
 * Executions are persisted (see executions.ts): the same name started twice returns the existing execution.
 * Progress events ("progress" on the EventEmitter) report states entered/exited and map items done/failed/total.
 */
import "./polyfill.js";
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import path from "node:path";
import { ExecutionError, ExecutionTimeoutError, StateMachine } from "aws-local-stepfunctions";
import { ConfigError, ConflictError, NotFoundError } from "../../core/errors.js";
import { LOCAL_SFN } from "../../core/limits.js";
import type { LocalDeployment, LocalFunction, LocalStateMachine } from "../deploy/deploy.js";
import { resolveStateDir } from "../stack/index.js";
import { type AslDefinition, type AslState, walkStates } from "./asl.js";
import { type ExecutionRecord, ExecutionStore } from "./executions.js";
import { type FaultConfig, FaultInjector, faultConfigFromEnv } from "./faults.js";
import { batchItems, type ChildResult, readItems, writeResults } from "./items.js";
import { evaluateTemplate, selectPath } from "./paths.js";

export type { ExecutionRecord, ExecutionStatus } from "./executions.js";

export interface LocalRunnerOptions {
  /** the local stack's state dir (default: local/stack resolveStateDir(): $FERRY_LOCAL_DIR or <repo>/.ferry/local);
   *  execution records live under <stateDir>/sfn/executions/ */
  stateDir?: string;
  /** run every Wait state for this many ms instead of its written duration (default: as written) */
  waitMs?: number;
  /** wait this many ms before every retry instead of IntervalSeconds x BackoffRate^n (default: as written) */
  retryIntervalMs?: number;
  /** concurrency of a Map with MaxConcurrency 0/absent (default LOCAL_SFN.defaultMapConcurrency) */
  defaultMapConcurrency?: number;
  /** local cap on every Map's concurrency, MaxConcurrency included (default LOCAL_SFN.maxMapConcurrency) */
  maxMapConcurrency?: number;
  /** TimeoutSeconds given to Task states that have none (default LOCAL_SFN.taskTimeoutSeconds) */
  taskTimeoutSeconds?: number;
  /** fault injection (default: from FERRY_FAULT_RATE / FERRY_FAULT_SEED / FERRY_FAULT_WHEN at construction) */
  fault?: Partial<FaultConfig>;
}

interface ProgressBase {
  /** the top-level execution */
  executionArn: string;
  /** enclosing Map/Parallel state names, outermost first ([] = top level) */
  parents: string[];
  /** epoch ms */
  at: number;
}
export type ProgressEvent =
  | (ProgressBase & { type: "executionStarted"; name: string; stateMachine: string })
  | (ProgressBase & { type: "executionSucceeded"; name: string; durationMs: number })
  | (ProgressBase & { type: "executionFailed"; name: string; durationMs: number; error: string; cause: string })
  | (ProgressBase & { type: "stateEntered"; state: string; stateType: string })
  | (ProgressBase & { type: "stateExited"; state: string; stateType: string; durationMs: number })
  | (ProgressBase & { type: "stateFailed"; state: string; error: string; cause: string })
  | (ProgressBase & { type: "stateRetried"; state: string; attempt: number })
  | (ProgressBase & { type: "stateCaught"; state: string })
  | (ProgressBase & {
      type: "mapProgress";
      state: string;
      /** items (not batches) */
      total: number;
      done: number;
      failed: number;
      running: number;
    })
  | (ProgressBase & { type: "faultInjected"; state: string; function: string });

export interface ExecutionHandle {
  executionArn: string;
  name: string;
  /** true when an execution of this name already existed (running or finished): nothing new was started */
  existing: boolean;
  /** resolves with the final record (never rejects: a failed execution has status FAILED) */
  done: Promise<ExecutionRecord>;
}

export interface StartExecutionInput {
  /** execution name (default: a random UUID); 1..80 chars of [A-Za-z0-9-_] and a few more, like the service */
  name?: string;
  input?: unknown;
}

interface Scope {
  executionArn: string;
  /** the (child) execution running this definition */
  childArn: string;
  sm: LocalStateMachine;
  parents: string[];
  faults: FaultInjector;
}

interface Prepared {
  sm: StateMachine;
  tasks: Map<string, AslState>;
  maps: Map<string, AslState>;
  waits: string[];
  retries: string[];
}

const MAP_TASK_RESOURCE = "arn:aws:lambda:us-east-1:000000000000:function:ferry-local-map";
const LAMBDA_INVOKE = /^arn:[^:]+:states:::lambda:invoke(\.waitForTaskToken)?$/;
const LAMBDA_ARN = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:/;
/** Execution names: 1..80 chars, none of whitespace, brackets, wildcards, special or control characters. */
const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/]{1,80}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused here
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** An Error whose name is a Step Functions error name (what Retry/Catch ErrorEquals match). */
export function statesError(name: string, cause: string): Error {
  const e = new Error(cause);
  e.name = name;
  return e;
}

export class LocalStepFunctions extends EventEmitter {
  readonly store: ExecutionStore;
  private readonly fault: FaultConfig;
  private readonly running = new Map<string, Promise<ExecutionRecord>>();
  private readonly prepared = new WeakMap<object, Prepared>();
  private readonly processors = new WeakMap<object, AslDefinition>();

  constructor(
    readonly deployment: LocalDeployment,
    readonly options: LocalRunnerOptions = {},
  ) {
    super();
    const stateDir = options.stateDir ?? resolveStateDir();
    this.store = new ExecutionStore(path.join(stateDir, "sfn", "executions"));
    this.fault = { ...faultConfigFromEnv(), ...options.fault };
  }

  /** Subscribe to progress events; returns the unsubscribe function. */
  onProgress(listener: (ev: ProgressEvent) => void): () => void {
    this.on("progress", listener);
    return () => this.off("progress", listener);
  }

  private progress(ev: ProgressEvent): void {
    if (this.listenerCount("progress")) this.emit("progress", ev);
  }

  /**
   * Check that every Task of a state machine (Map processors included) has a local handler. Throws a ConfigError
   * naming the state and the function.
   */
  checkHandlers(ref: string): void {
    const sm = this.deployment.stateMachine(ref);
    for (const { name, state, parents } of walkStates(sm.asl)) {
      if (state.Type !== "Task") continue;
      const where = `state machine ${sm.declaredName}, state "${[...parents, name].join("/")}"`;
      const res = String(state.Resource);
      let fnRef: string | undefined;
      if (LAMBDA_INVOKE.test(res)) {
        if (res.endsWith(".waitForTaskToken")) {
          throw new ConfigError(`${where}: lambda:invoke.waitForTaskToken is not supported by the local runner`, {
            field: name,
          });
        }
        fnRef = typeof state.Parameters?.FunctionName === "string" ? state.Parameters.FunctionName : undefined;
        if (!fnRef) continue; // FunctionName.$: resolved at run time
      } else if (LAMBDA_ARN.test(res)) {
        fnRef = res;
      } else {
        throw new ConfigError(
          `${where}: task resource ${res} is not supported by the local runner (Lambda tasks only)`,
          {
            field: name,
          },
        );
      }
      this.functionFor(where, fnRef);
    }
  }

  private functionFor(where: string, fnRef: string): LocalFunction {
    const fn = this.deployment.findFunction(fnRef);
    if (!fn)
      throw new ConfigError(`${where} invokes function ${fnRef}, which is not in the local deployment`, {
        field: where,
      });
    if (!fn.entry) {
      throw new ConfigError(
        `${where} invokes function ${fn.logicalId} (${fn.arn}), which has no local handler: define it with FerryFunction (infra/constructs/ferry-function.ts) so its entry is recorded as "ferry:entry" metadata`,
        { field: where },
      );
    }
    return fn;
  }

  /** Start an execution. A name that already exists returns that execution (same input) or a ConflictError. */
  async startExecution(stateMachine: string, opts: StartExecutionInput = {}): Promise<ExecutionHandle> {
    const sm = this.deployment.stateMachine(stateMachine);
    this.checkHandlers(sm.logicalId);
    const name = opts.name ?? randomUUID();
    if (!EXECUTION_NAME.test(name) || CONTROL_CHARS.test(name)) {
      throw new ConfigError(
        `execution name "${name}": 1..80 characters, no spaces, brackets, wildcards or : / \\ etc.`,
        {
          field: "name",
        },
      );
    }
    const input = JSON.parse(JSON.stringify(opts.input ?? {}));
    const executionArn = `arn:aws:states:${this.deployment.region}:${this.deployment.accountId}:execution:${sm.name}:${name}`;
    const rec: ExecutionRecord = {
      executionArn,
      stateMachineArn: sm.arn,
      stateMachineName: sm.name,
      name,
      status: "RUNNING",
      input,
      startDate: new Date().toISOString(),
      pid: process.pid,
    };
    if (!this.store.create(rec)) {
      const existing = this.store.get(sm.name, name) as ExecutionRecord;
      if (stableJson(existing.input) !== stableJson(input)) {
        throw new ConflictError(
          `execution "${name}" of ${sm.declaredName} already exists (${existing.status}) with a different input (ExecutionAlreadyExists)`,
          { executionArn },
        );
      }
      return {
        executionArn,
        name,
        existing: true,
        done: this.running.get(executionArn) ?? this.waitForExecution(executionArn),
      };
    }
    const done = this.execute(sm, rec);
    this.running.set(executionArn, done);
    void done.finally(() => this.running.delete(executionArn));
    return { executionArn, name, existing: false, done };
  }

  /** Start (or join) an execution and wait for its end. */
  async runExecution(stateMachine: string, opts: StartExecutionInput = {}): Promise<ExecutionRecord> {
    return (await this.startExecution(stateMachine, opts)).done;
  }

  /** The record of an execution, by ARN (or by name with the state machine). */
  describeExecution(executionArnOrName: string, stateMachine?: string): ExecutionRecord | undefined {
    const { smName, name } = this.parseExecution(executionArnOrName, stateMachine);
    return this.store.get(smName, name);
  }

  /** Executions, newest first (all state machines when none is given). */
  listExecutions(stateMachine?: string, status?: ExecutionRecord["status"]): ExecutionRecord[] {
    const smName = stateMachine ? this.deployment.stateMachine(stateMachine).name : undefined;
    return this.store.list(smName).filter((r) => !status || r.status === status);
  }

  /** Wait until an execution (possibly run by another process) ends. */
  async waitForExecution(executionArn: string, pollMs = 200): Promise<ExecutionRecord> {
    const mine = this.running.get(executionArn);
    if (mine) return mine;
    const { smName, name } = this.parseExecution(executionArn);
    for (;;) {
      const rec = this.store.get(smName, name);
      if (!rec) throw new NotFoundError(`execution ${executionArn} does not exist`);
      if (rec.status !== "RUNNING") return rec;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private parseExecution(ref: string, stateMachine?: string): { smName: string; name: string } {
    if (ref.startsWith("arn:")) {
      const parts = ref.split(":");
      if (parts[5] !== "execution" || parts.length < 8)
        throw new ConfigError(`not an execution ARN: ${ref}`, { field: "executionArn" });
      return { smName: parts[6] as string, name: parts.slice(7).join(":") };
    }
    if (!stateMachine)
      throw new ConfigError(`execution "${ref}": give its ARN or the state machine`, { field: "executionArn" });
    return { smName: this.deployment.stateMachine(stateMachine).name, name: ref };
  }

  private async execute(sm: LocalStateMachine, rec: ExecutionRecord): Promise<ExecutionRecord> {
    const t0 = Date.now();
    const base = { executionArn: rec.executionArn, parents: [] as string[] };
    this.progress({ ...base, type: "executionStarted", name: rec.name, stateMachine: sm.name, at: t0 });
    const scope: Scope = {
      executionArn: rec.executionArn,
      childArn: rec.executionArn,
      sm,
      parents: [],
      faults: new FaultInjector(this.fault),
    };
    const context = {
      Execution: {
        Id: rec.executionArn,
        Name: rec.name,
        RoleArn: `arn:aws:iam::${this.deployment.accountId}:role/local`,
        StartTime: rec.startDate,
      },
      StateMachine: { Id: sm.arn, Name: sm.name },
    };
    let final: ExecutionRecord;
    try {
      const output = await this.runDefinition(sm.asl, rec.input, scope, context);
      final = { ...rec, status: "SUCCEEDED", output, stopDate: new Date().toISOString() };
      this.progress({
        ...base,
        type: "executionSucceeded",
        name: rec.name,
        durationMs: Date.now() - t0,
        at: Date.now(),
      });
    } catch (e) {
      const err = e as Error;
      final = {
        ...rec,
        status:
          err.name === "States.Timeout" && (e as { executionTimeout?: boolean }).executionTimeout
            ? "TIMED_OUT"
            : "FAILED",
        error: err.name,
        cause: err.message,
        stopDate: new Date().toISOString(),
      };
      this.progress({
        ...base,
        type: "executionFailed",
        name: rec.name,
        durationMs: Date.now() - t0,
        error: err.name,
        cause: err.message,
        at: Date.now(),
      });
    }
    this.store.update(final);
    return final;
  }

  /** Rewrite a definition for the library (Maps → local-handler Tasks, task timeouts) once; cached. */
  private prepare(def: AslDefinition): Prepared {
    const cached = this.prepared.get(def);
    if (cached) return cached;
    const copy = JSON.parse(
      JSON.stringify({ StartAt: def.StartAt, States: def.States, TimeoutSeconds: def.TimeoutSeconds }),
    ) as AslDefinition;
    if (copy.TimeoutSeconds === undefined) delete copy.TimeoutSeconds;
    const p: Omit<Prepared, "sm"> = { tasks: new Map(), maps: new Map(), waits: [], retries: [] };
    const origStates = new Map<string, AslState>();
    const collectOrig = (d: { States: Record<string, AslState> }) => {
      for (const [n, s] of Object.entries(d.States)) {
        origStates.set(n, s);
        if (s.Type === "Parallel") for (const b of s.Branches ?? []) collectOrig(b);
      }
    };
    collectOrig(def);
    const rewrite = (d: { States: Record<string, AslState> }) => {
      for (const [n, s] of Object.entries(d.States)) {
        if (s.Retry) p.retries.push(n);
        if (s.Type === "Wait") p.waits.push(n);
        if (s.Type === "Parallel") for (const b of s.Branches ?? []) rewrite(b);
        if (s.Type === "Task") {
          if (s.TimeoutSeconds === undefined && s.TimeoutSecondsPath === undefined) {
            s.TimeoutSeconds = this.options.taskTimeoutSeconds ?? LOCAL_SFN.taskTimeoutSeconds;
          }
          p.tasks.set(n, s);
        }
        if (s.Type === "Map") {
          p.maps.set(n, origStates.get(n) as AslState);
          const t: AslState = { Type: "Task", Resource: MAP_TASK_RESOURCE, TimeoutSeconds: 2_000_000 };
          for (const k of [
            "InputPath",
            "ResultSelector",
            "ResultPath",
            "OutputPath",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Comment",
          ]) {
            if (s[k] !== undefined) t[k] = s[k];
          }
          d.States[n] = t;
        }
      }
    };
    rewrite(copy);
    const prepared: Prepared = {
      ...p,
      sm: new StateMachine(copy as never, { validationOptions: { noValidate: true } }),
    };
    this.prepared.set(def, prepared);
    return prepared;
  }

  /** Run one definition (the state machine, or a Map's ItemProcessor) to its end. */
  private async runDefinition(def: AslDefinition, input: unknown, scope: Scope, context: object): Promise<unknown> {
    const prepared = this.prepare(def);
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [n, s] of prepared.tasks) handlers[n] = this.taskHandler(n, s, scope);
    for (const [n, s] of prepared.maps) handlers[n] = (inp) => this.runMap(n, s, inp, scope, context);
    const overrides: Record<string, unknown> = { taskResourceLocalHandlers: handlers };
    if (this.options.waitMs !== undefined) {
      overrides.waitTimeOverrides = Object.fromEntries(prepared.waits.map((n) => [n, this.options.waitMs]));
    }
    if (this.options.retryIntervalMs !== undefined) {
      overrides.retryIntervalOverrides = Object.fromEntries(
        prepared.retries.map((n) => [n, this.options.retryIntervalMs]),
      );
    }
    const run = prepared.sm.run(input as never, { overrides: overrides as never, context: context as never });
    this.pump(run.eventLogs, scope, prepared);
    try {
      return await run.result;
    } catch (e) {
      if (e instanceof ExecutionTimeoutError) {
        const err = statesError("States.Timeout", "the execution exceeded its TimeoutSeconds");
        (err as { executionTimeout?: boolean }).executionTimeout = true;
        throw err;
      }
      if (e instanceof ExecutionError) {
        const cause = e.cause as Error | undefined;
        throw statesError(cause?.name ?? "States.Runtime", cause?.message ?? e.message);
      }
      throw e;
    }
  }

  private pump(logs: AsyncGenerator<unknown>, scope: Scope, prepared: Prepared): void {
    if (!this.listenerCount("progress")) {
      void (async () => {
        for await (const _ of logs) {
          /* drain */
        }
      })().catch(() => {});
      return;
    }
    const entered = new Map<string, number>();
    const base = { executionArn: scope.executionArn, parents: scope.parents };
    void (async () => {
      for await (const raw of logs) {
        const ev = raw as {
          type: string;
          timestamp: number;
          state?: { name: string; type: string };
          Error?: string;
          Cause?: unknown;
          retry?: { attempt: number };
        };
        const state = ev.state?.name ?? "";
        const stateType = prepared.maps.has(state) ? "Map" : (ev.state?.type ?? "");
        if (ev.type === "StateEntered") {
          entered.set(state, ev.timestamp);
          this.progress({ ...base, type: "stateEntered", state, stateType, at: ev.timestamp });
        } else if (ev.type === "StateExited") {
          const t = entered.get(state) ?? ev.timestamp;
          this.progress({
            ...base,
            type: "stateExited",
            state,
            stateType,
            durationMs: ev.timestamp - t,
            at: ev.timestamp,
          });
        } else if (ev.type === "StateFailed") {
          this.progress({
            ...base,
            type: "stateFailed",
            state,
            error: String(ev.Error),
            cause: String(ev.Cause),
            at: ev.timestamp,
          });
        } else if (ev.type === "StateRetried") {
          this.progress({ ...base, type: "stateRetried", state, attempt: ev.retry?.attempt ?? 0, at: ev.timestamp });
        } else if (ev.type === "StateCaught") {
          this.progress({ ...base, type: "stateCaught", state, at: ev.timestamp });
        }
      }
    })().catch(() => {});
  }

  private taskHandler(name: string, st: AslState, scope: Scope): (input: unknown) => Promise<unknown> {
    const res = String(st.Resource);
    const where = `state machine ${scope.sm.declaredName}, state "${[...scope.parents, name].join("/")}"`;
    if (LAMBDA_INVOKE.test(res)) {
      return async (input) => {
        const params = (input ?? {}) as { FunctionName?: string; Payload?: unknown };
        const fn = this.functionFor(where, String(params.FunctionName));
        const payload = await this.invokeTask(name, fn, params.Payload ?? null, scope);
        return {
          ExecutedVersion: "$LATEST",
          Payload: payload,
          SdkHttpMetadata: { HttpStatusCode: 200 },
          SdkResponseMetadata: { RequestId: randomUUID() },
          StatusCode: 200,
        };
      };
    }
    if (LAMBDA_ARN.test(res)) {
      return async (input) => this.invokeTask(name, this.functionFor(where, res), input, scope);
    }
    return async () => {
      throw new ConfigError(`${where}: task resource ${res} is not supported by the local runner`, { field: name });
    };
  }

  /** Invoke a Lambda task's handler, with fault injection; errors become Lambda-shaped Step Functions errors. */
  private async invokeTask(state: string, fn: LocalFunction, payload: unknown, scope: Scope): Promise<unknown> {
    // keyed by the top-level execution and the state path (child execution names are random UUIDs)
    const fault = scope.faults.next(scope.executionArn, [...scope.parents, state].join("/"), payload);
    const inject = () => {
      this.progress({
        executionArn: scope.executionArn,
        parents: scope.parents,
        type: "faultInjected",
        state,
        function: fn.logicalId,
        at: Date.now(),
      });
      throw lambdaError(fault as Error);
    };
    if (fault && scope.faults.config.when === "before") inject();
    let out: unknown;
    try {
      out = await this.deployment.invoke(fn.logicalId, payload);
    } catch (e) {
      throw lambdaError(e as Error);
    }
    if (fault) inject();
    return out;
  }

  private processor(st: AslState): AslDefinition {
    let p = this.processors.get(st);
    if (!p) {
      const raw = (st.ItemProcessor ?? st.Iterator) as AslDefinition | undefined;
      if (!raw) throw new ConfigError("Map state without ItemProcessor/Iterator");
      p = { StartAt: raw.StartAt, States: raw.States };
      this.processors.set(st, p);
    }
    return p;
  }

  /** Run a Map state (input = its effective input after InputPath). */
  private async runMap(name: string, st: AslState, input: unknown, scope: Scope, context: object): Promise<unknown> {
    const distributed = st.ItemProcessor?.ProcessorConfig?.Mode === "DISTRIBUTED";
    const processor = this.processor(st);
    const where = `Map state ${name}`;
    let items: unknown[];
    if (st.ItemReader) {
      items = await readItems(name, st.ItemReader, input, context);
    } else {
      const v = await selectPath(st.ItemsPath ?? "$", input, context);
      if (!Array.isArray(v)) {
        throw statesError("States.Runtime", `${where}: ItemsPath ${st.ItemsPath ?? "$"} does not select an array`);
      }
      items = v;
    }
    const selector = st.ItemSelector ?? st.Parameters;
    if (selector) {
      const selected: unknown[] = [];
      for (let i = 0; i < items.length; i++) {
        selected.push(
          await evaluateTemplate(selector, input, { ...context, Map: { Item: { Value: items[i], Index: i } } }),
        );
      }
      items = selected;
    }
    const units = st.ItemBatcher ? await batchItems(name, st.ItemBatcher, items, input, context) : items;
    const unitSize = (i: number) => (st.ItemBatcher ? ((units[i] as { Items: unknown[] }).Items.length ?? 1) : 1);
    let concurrency = Number(st.MaxConcurrency ?? 0);
    if (st.MaxConcurrencyPath) concurrency = Number(await selectPath(st.MaxConcurrencyPath, input, context));
    if (!(concurrency > 0)) concurrency = this.options.defaultMapConcurrency ?? LOCAL_SFN.defaultMapConcurrency;
    concurrency = Math.min(concurrency, this.options.maxMapConcurrency ?? LOCAL_SFN.maxMapConcurrency);
    let tolPct: number | undefined = st.ToleratedFailurePercentage;
    if (st.ToleratedFailurePercentagePath)
      tolPct = Number(await selectPath(st.ToleratedFailurePercentagePath, input, context));
    let tolCount: number | undefined = st.ToleratedFailureCount;
    if (st.ToleratedFailureCountPath) tolCount = Number(await selectPath(st.ToleratedFailureCountPath, input, context));

    const total = items.length;
    const mapRunId = randomUUID();
    const sm = scope.sm;
    const mapRunArn = `arn:aws:states:${this.deployment.region}:${this.deployment.accountId}:mapRun:${sm.name}/${name}:${mapRunId}`;
    const parents = [...scope.parents, name];
    const results: ChildResult[] = [];
    let failedItems = 0;
    let doneItems = 0;
    let running = 0;
    let stop = false;
    let firstError: Error | undefined;
    const exceeded = () => {
      if (tolPct === undefined && tolCount === undefined) return failedItems > 0;
      return (
        (tolCount !== undefined && failedItems > tolCount) ||
        (tolPct !== undefined && (failedItems * 100) / total > tolPct)
      );
    };
    const report = () =>
      this.progress({
        executionArn: scope.executionArn,
        parents: scope.parents,
        type: "mapProgress",
        state: name,
        total,
        done: doneItems,
        failed: failedItems,
        running,
        at: Date.now(),
      });
    report();
    let next = 0;
    const worker = async () => {
      while (!stop && next < units.length) {
        const i = next++;
        const size = unitSize(i);
        running += size;
        const childName = distributed ? randomUUID() : `${i}`;
        const childArn = distributed
          ? `arn:aws:states:${this.deployment.region}:${this.deployment.accountId}:execution:${sm.name}/${name}:${childName}`
          : scope.childArn;
        const childContext = distributed
          ? {
              Execution: {
                Id: childArn,
                Name: childName,
                RoleArn: `arn:aws:iam::${this.deployment.accountId}:role/local`,
                StartTime: new Date().toISOString(),
              },
              StateMachine: { Id: `${sm.arn}/${name}`, Name: `${sm.name}/${name}` },
            }
          : context;
        const startDate = new Date();
        try {
          const output = await this.runDefinition(processor, units[i], { ...scope, childArn, parents }, childContext);
          results.push({
            index: i,
            name: childName,
            executionArn: childArn,
            input: units[i],
            status: "SUCCEEDED",
            output,
            startDate,
            stopDate: new Date(),
          });
        } catch (e) {
          const err = e as Error;
          results.push({
            index: i,
            name: childName,
            executionArn: childArn,
            input: units[i],
            status: "FAILED",
            error: err.name,
            cause: err.message,
            startDate,
            stopDate: new Date(),
          });
          failedItems += size;
          if (!distributed) {
            firstError ??= err;
            stop = true;
          } else if (exceeded()) stop = true;
        }
        running -= size;
        doneItems += size;
        report();
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, units.length) }, worker));
    if (firstError) throw firstError;
    results.sort((a, b) => a.index - b.index);
    const fail = distributed && exceeded();
    let output: unknown;
    if (st.ResultWriter?.Resource) {
      output = await writeResults(
        name,
        st.ResultWriter,
        mapRunArn,
        mapRunId,
        `${sm.arn}/${name}`,
        results,
        input,
        context,
      );
    } else {
      output = results.map((r) => (r.status === "SUCCEEDED" ? r.output : { Error: r.error, Cause: r.cause }));
      if (st.ResultWriter?.WriterConfig?.Transformation === "FLATTEN") {
        output = (output as unknown[]).flatMap((o) => (Array.isArray(o) ? o : [o]));
      }
    }
    if (fail) {
      throw statesError(
        "States.ExceedToleratedFailureThreshold",
        `${where}: ${failedItems} of ${total} items failed, over the tolerated threshold (${
          tolPct !== undefined ? `${tolPct}%` : ""
        }${tolPct !== undefined && tolCount !== undefined ? ", " : ""}${tolCount !== undefined ? `${tolCount} items` : ""}${
          tolPct === undefined && tolCount === undefined ? "0" : ""
        })`,
      );
    }
    return output;
  }
}

/** Shape a handler error like Step Functions reports a Lambda function error: name = errorType, cause = JSON. */
function lambdaError(e: Error): Error {
  const name = e?.name || "Error";
  const cause = JSON.stringify({
    errorType: name,
    errorMessage: e?.message ?? String(e),
    trace: (e?.stack ?? "").split("\n").slice(0, 20),
  });
  return statesError(name, cause);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}
