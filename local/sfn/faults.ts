/**
 * Fault injection for idempotence tests (local runner only). With FERRY_FAULT_RATE=p (0..1) the runner fails that
 * share of Lambda task attempts with an error named "TransientError". Deterministic: whether an attempt fails is a
 * hash of (FERRY_FAULT_SEED, execution, state, payload, attempt number), so a rerun with the same seed fails the
 * same attempts regardless of scheduling. FERRY_FAULT_WHEN=after (default) fails the attempt AFTER the handler ran
 * (its side effects happened: the retry must be idempotent); "before" fails it before the handler runs.
 */
import { createHash } from "node:crypto";
import { ENV } from "../../core/env.js";
import { ConfigError, TransientError } from "../../core/errors.js";

export type FaultWhen = "before" | "after";

export interface FaultConfig {
  rate: number;
  seed: string;
  when: FaultWhen;
  /** states (by name) whose FIRST attempt of every call fails regardless of the rate, so a test run is certain to
   *  exercise at least these retries (a rate alone can draw zero faults for a short execution) */
  firstAttemptOf?: readonly string[];
  /** at most this many injected failures per call (default 3), so a Retry with more attempts always absorbs them:
   *  at rate 0.3 a call failing all 7 attempts of a 6-retry policy is rare (0.02%), not impossible, and a test
   *  that means "Retry absorbs faults" must not fail for it */
  maxPerCall?: number;
}

export const FAULT_SEED_ENV = "FERRY_FAULT_SEED";
export const FAULT_WHEN_ENV = "FERRY_FAULT_WHEN";

export function faultConfigFromEnv(env: NodeJS.ProcessEnv = process.env): FaultConfig {
  const raw = env[ENV.faultRate];
  const rate = raw === undefined || raw === "" ? 0 : Number(raw);
  if (!(rate >= 0 && rate <= 1))
    throw new ConfigError(`${ENV.faultRate}=${raw}: expected a number in 0..1`, { field: ENV.faultRate });
  const when = (env[FAULT_WHEN_ENV] ?? "after") as FaultWhen;
  if (when !== "before" && when !== "after") {
    throw new ConfigError(`${FAULT_WHEN_ENV}=${when}: expected "before" or "after"`, { field: FAULT_WHEN_ENV });
  }
  return { rate, seed: env[FAULT_SEED_ENV] ?? "0", when };
}

/** Counts attempts per (execution, state, payload) and decides which attempts fail. */
export class FaultInjector {
  private readonly attempts = new Map<string, number>();
  injected = 0;
  constructor(readonly config: FaultConfig) {}

  /** Decide for the next attempt of this call; returns the error to throw or undefined. */
  next(executionArn: string, state: string, payload: unknown): TransientError | undefined {
    const forced = this.config.firstAttemptOf ?? [];
    if (this.config.rate <= 0 && forced.length === 0) return undefined;
    const key = `${executionArn}\u0000${state}\u0000${JSON.stringify(payload)}`;
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempt);
    const h = createHash("sha256").update(`${this.config.seed}\u0000${key}\u0000${attempt}`).digest();
    const u = h.readUInt32BE(0) / 0x1_0000_0000;
    const name = state.slice(state.lastIndexOf("/") + 1);
    if (u >= this.config.rate && !(attempt === 1 && forced.includes(name))) return undefined;
    if (attempt > (this.config.maxPerCall ?? 3)) return undefined;
    this.injected++;
    return new TransientError(
      `fault injected by the local runner (${ENV.faultRate}=${this.config.rate}, ${FAULT_SEED_ENV}=${this.config.seed}, ${this.config.when} the handler) in state ${state}, attempt ${attempt}`,
      { state, attempt },
    );
  }
}
