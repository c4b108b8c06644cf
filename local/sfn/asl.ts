/**
 * Amazon States Language helpers: extract a synthesized AWS::StepFunctions::StateMachine's definition (resolve the
 * Fn::Join'd DefinitionString against the local names, apply DefinitionSubstitutions, parse), validate it with
 * asl-validator, and walk its states (Parallel branches, Map item processors).
 */
import { createRequire } from "node:module";
import { ConfigError, ValidationError } from "../../core/errors.js";
import { type RefResolver, resolveIntrinsics } from "../deploy/intrinsics.js";

const require = createRequire(import.meta.url);

// biome-ignore lint/suspicious/noExplicitAny: ASL is open JSON; states are checked where used
export type AslState = Record<string, any>;
export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
  Comment?: string;
  TimeoutSeconds?: number;
  QueryLanguage?: string;
}

/** Build the ASL object of a state machine resource's Properties, resolved against the local names. */
export function extractDefinition(logicalId: string, props: Record<string, unknown>, refs: RefResolver): AslDefinition {
  let text: string;
  if (props.DefinitionString !== undefined) {
    text = String(resolveIntrinsics(props.DefinitionString, refs, `${logicalId}.DefinitionString`));
  } else if (props.Definition !== undefined) {
    text = JSON.stringify(resolveIntrinsics(props.Definition, refs, `${logicalId}.Definition`));
  } else {
    throw new ConfigError(
      `state machine ${logicalId}: no DefinitionString/Definition (DefinitionS3Location is not supported locally)`,
      {
        field: `${logicalId}.DefinitionString`,
      },
    );
  }
  const subs = props.DefinitionSubstitutions
    ? (resolveIntrinsics(props.DefinitionSubstitutions, refs, `${logicalId}.DefinitionSubstitutions`) as Record<
        string,
        unknown
      >)
    : {};
  text = text.replace(/\$\{([A-Za-z0-9_.-]+)\}/g, (m, name: string) => (name in subs ? String(subs[name]) : m));
  let def: AslDefinition;
  try {
    def = JSON.parse(text) as AslDefinition;
  } catch (e) {
    throw new ConfigError(
      `state machine ${logicalId}: definition is not JSON after resolution: ${(e as Error).message}`,
      {
        field: `${logicalId}.DefinitionString`,
      },
    );
  }
  if (def.QueryLanguage === "JSONata") {
    throw new ConfigError(`state machine ${logicalId}: JSONata is not supported by the local runner; use JSONPath`, {
      field: `${logicalId}.QueryLanguage`,
    });
  }
  return def;
}

type Validator = (
  def: unknown,
  opts?: { checkPaths?: boolean; checkArn?: boolean },
) => { isValid: boolean; errorsText: (sep?: string) => string };

/** Validate with asl-validator; a ValidationError lists what is wrong. */
export function validateDefinition(name: string, def: AslDefinition): void {
  const validator = require("asl-validator") as Validator;
  const { isValid, errorsText } = validator(def, { checkPaths: true, checkArn: false });
  if (!isValid) {
    throw new ValidationError(`state machine ${name}: invalid ASL: ${errorsText("; ")}`, { stateMachine: name });
  }
}

/** Every state of a definition, with the chain of parent state names (Parallel branch / Map processor). */
export function* walkStates(
  def: { States: Record<string, AslState> },
  parents: string[] = [],
): Generator<{ name: string; state: AslState; parents: string[] }> {
  for (const [name, state] of Object.entries(def.States)) {
    yield { name, state, parents };
    if (state.Type === "Parallel") {
      for (const b of state.Branches ?? []) yield* walkStates(b, [...parents, name]);
    }
    if (state.Type === "Map") {
      const proc = state.ItemProcessor ?? state.Iterator;
      if (proc) yield* walkStates(proc, [...parents, name]);
    }
  }
}
