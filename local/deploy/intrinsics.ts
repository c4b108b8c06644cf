/**
 * Resolve CloudFormation intrinsic functions (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split) in a
 * synthesized template value against the local deployment's names. Anything else (conditions, imports) is a
 * ConfigError naming the path, so an unsupported template fails loudly instead of running with a wrong value.
 */
import { ConfigError } from "../../core/errors.js";

export interface RefResolver {
  /** value of `{Ref: id}` (pseudo parameters included); undefined = unknown */
  ref(id: string): string | undefined;
  /** value of `{Fn::GetAtt: [id, attr]}`; undefined = unknown */
  getAtt(id: string, attr: string): string | undefined;
}

/** Marker for AWS::NoValue: the property is dropped. */
const NO_VALUE = Symbol("AWS::NoValue");

export function resolveIntrinsics(value: unknown, refs: RefResolver, where = "$"): unknown {
  const out = resolve(value, refs, where);
  return out === NO_VALUE ? undefined : out;
}

function resolve(value: unknown, refs: RefResolver, where: string): unknown {
  if (Array.isArray(value)) {
    return value.map((v, i) => resolve(v, refs, `${where}[${i}]`)).filter((v) => v !== NO_VALUE);
  }
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const k = keys[0] as string;
    const arg = obj[k];
    if (k === "Ref") {
      if (arg === "AWS::NoValue") return NO_VALUE;
      const v = refs.ref(String(arg));
      if (v === undefined)
        throw new ConfigError(`${where}: cannot resolve {Ref: ${String(arg)}} locally`, { field: where });
      return v;
    }
    if (k === "Fn::GetAtt") {
      const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split(/\.(.+)/);
      const v = refs.getAtt(String(id), String(attr));
      if (v === undefined) {
        throw new ConfigError(`${where}: cannot resolve {Fn::GetAtt: [${id}, ${attr}]} locally`, { field: where });
      }
      return v;
    }
    if (k === "Fn::Join") {
      const [sep, parts] = arg as [string, unknown];
      const list = resolve(parts, refs, `${where}.Fn::Join`);
      if (!Array.isArray(list)) throw new ConfigError(`${where}: Fn::Join needs a list`, { field: where });
      return list.map((p) => String(p)).join(sep);
    }
    if (k === "Fn::Select") {
      const [index, list] = arg as [unknown, unknown];
      const l = resolve(list, refs, `${where}.Fn::Select`);
      const i = Number(resolve(index, refs, `${where}.Fn::Select`));
      if (!Array.isArray(l) || !(i >= 0 && i < l.length)) {
        throw new ConfigError(`${where}: Fn::Select index ${i} out of range`, { field: where });
      }
      return l[i];
    }
    if (k === "Fn::Split") {
      const [sep, str] = arg as [string, unknown];
      return String(resolve(str, refs, `${where}.Fn::Split`)).split(sep);
    }
    if (k === "Fn::Sub") {
      const [template, vars] = typeof arg === "string" ? [arg, {}] : (arg as [string, Record<string, unknown>]);
      const resolvedVars = resolve(vars, refs, `${where}.Fn::Sub`) as Record<string, unknown>;
      return template.replace(/\$\{([^}!][^}]*)\}/g, (_m, name: string) => {
        if (name in resolvedVars) return String(resolvedVars[name]);
        const dot = name.indexOf(".");
        const v = dot > 0 ? refs.getAtt(name.slice(0, dot), name.slice(dot + 1)) : refs.ref(name);
        if (v === undefined)
          throw new ConfigError(`${where}: cannot resolve \${${name}} in Fn::Sub locally`, { field: where });
        return v;
      });
    }
    if (k.startsWith("Fn::") || k === "Condition") {
      throw new ConfigError(`${where}: intrinsic ${k} is not supported by the local deployer`, { field: where });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const r = resolve(v, refs, `${where}.${k}`);
    if (r !== NO_VALUE) out[k] = r;
  }
  return out;
}
