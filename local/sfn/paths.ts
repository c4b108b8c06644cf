/**
 * JSONPath payload templates and paths, evaluated by aws-local-stepfunctions itself (a one-state Pass machine), so
 * ItemSelector / BatchInput / ItemReader Parameters / ItemsPath behave exactly like the states the library runs:
 * `.$` keys, `$$` context paths and intrinsic functions included.
 */
import "./polyfill.js";
import { StateMachine } from "aws-local-stepfunctions";

type Json = Parameters<StateMachine["run"]>[0];
type Context = NonNullable<Parameters<StateMachine["run"]>[1]>["context"];

const templateMachines = new WeakMap<object, StateMachine>();
const pathMachines = new Map<string, StateMachine>();

async function runPass(sm: StateMachine, input: unknown, context: unknown): Promise<unknown> {
  const run = sm.run(input as Json, { context: context as Context });
  // drain the event log so nothing accumulates
  void (async () => {
    for await (const _ of run.eventLogs) {
      /* discard */
    }
  })().catch(() => {});
  try {
    return await run.result;
  } catch (e) {
    const cause = (e as { cause?: Error }).cause;
    throw cause ?? e;
  }
}

/** Evaluate a payload template (Parameters-style object) against an input and a context object. */
export async function evaluateTemplate(template: object, input: unknown, context: unknown): Promise<unknown> {
  let sm = templateMachines.get(template);
  if (!sm) {
    sm = new StateMachine({ StartAt: "T", States: { T: { Type: "Pass", Parameters: template, End: true } } } as never, {
      validationOptions: { noValidate: true },
    });
    templateMachines.set(template, sm);
  }
  return runPass(sm, input, context);
}

/** Select a reference path (e.g. ItemsPath "$.items") from an input. */
export async function selectPath(jsonPath: string, input: unknown, context: unknown): Promise<unknown> {
  if (jsonPath === "$") return input;
  let sm = pathMachines.get(jsonPath);
  if (!sm) {
    sm = new StateMachine({ StartAt: "P", States: { P: { Type: "Pass", InputPath: jsonPath, End: true } } } as never, {
      validationOptions: { noValidate: true },
    });
    pathMachines.set(jsonPath, sm);
  }
  return runPass(sm, input, context);
}
