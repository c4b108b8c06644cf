import type { Command } from "commander";
import { EnvironmentError } from "../../core/errors.js";
import {
  DEFAULT_PORTS,
  formatEnvExports,
  inspectStack,
  type LocalStack,
  localEnv,
  probePort,
  resolveStateDir,
  SERVICES,
  STATE_DIR_ENV,
  startLocalStack,
  stopStack,
} from "../../local/stack/index.js";

/**
 * `ferry local up [--detach] | down | status [--json] | env` — the embedded local stack (docs/local-stack.md).
 * `--state-dir DIR` (or $FERRY_LOCAL_DIR) picks another stack than <project>/.ferry/local.
 */
export function registerLocal(program: Command): void {
  const local = program
    .command("local")
    .description("the embedded local stack: S3 (s3rver), DynamoDB (dynalite), SQS (fauxqs) on 127.0.0.1");

  const dirOf = (o: { stateDir?: string }) => (o.stateDir ? o.stateDir : resolveStateDir());

  local
    .command("up")
    .description("start the local stack (foreground until Ctrl-C, or --detach to run it in the background)")
    .option("--detach", "start it in the background and return once it is healthy")
    .option("--state-dir <dir>", `state directory (default: $${STATE_DIR_ENV} or <project>/.ferry/local)`)
    .option("--ephemeral", "keep DynamoDB in memory (default: on disk under the state dir)")
    .option("--json", "print the stack's endpoints as one JSON object")
    .option("--log-requests", "emulators log every request")
    .action(
      async (o: {
        detach?: boolean;
        stateDir?: string;
        ephemeral?: boolean;
        json?: boolean;
        logRequests?: boolean;
      }) => {
        const stateDir = dirOf(o);
        const existing = inspectStack(stateDir);
        if (existing && existing.dead.length === 0) {
          const s = existing.state;
          process.stderr.write(
            `a local stack is already running in ${s.stateDir} (started ${s.startedAt}); using it\n`,
          );
          printEndpoints(s.endpoints, s.stateDir, o.json);
          return;
        }
        if (existing) {
          const names = existing.dead.map((e) => `${e.service} (${e.emulator}, log ${e.log})`).join(", ");
          process.stderr.write(
            `the local stack in ${existing.state.stateDir} was partly down (${names}); restarting it\n`,
          );
          await stopStack(stateDir);
        }
        const stack = await startLocalStack({
          stateDir,
          detached: Boolean(o.detach),
          ports: DEFAULT_PORTS,
          persist: !o.ephemeral,
          verbose: o.logRequests,
        });
        printEndpoints(stack.endpoints, stack.stateDir, o.json);
        if (o.detach) {
          process.stderr.write(
            `local stack running in the background (logs in ${stack.stateDir}/logs); stop it with: ferry local down\n`,
          );
          return;
        }
        process.stderr.write("local stack running; Ctrl-C stops it\n");
        await runForeground(stack);
      },
    );

  local
    .command("down")
    .description("stop the local stack started by `ferry local up` (exactly the processes it started)")
    .option("--state-dir <dir>", "state directory")
    .action(async (o: { stateDir?: string }) => {
      const stateDir = dirOf(o);
      const stopped = await stopStack(stateDir);
      if (stopped.length === 0) {
        process.stderr.write(`no local stack is running in ${stateDir}\n`);
        return;
      }
      for (const e of stopped) process.stderr.write(`stopped ${e.service} (${e.emulator}, pid ${e.pid})\n`);
    });

  local
    .command("status")
    .description("is the local stack running? endpoints, pids, logs")
    .option("--state-dir <dir>", "state directory")
    .option("--json", "one JSON object")
    .action(async (o: { stateDir?: string; json?: boolean }) => {
      const stateDir = dirOf(o);
      const found = inspectStack(stateDir);
      if (!found) {
        if (o.json) process.stdout.write(`${JSON.stringify({ running: false, stateDir })}\n`);
        else process.stdout.write(`no local stack is running in ${stateDir}\n`);
        return;
      }
      const s = found.state;
      const emulators: Record<string, unknown> = {};
      for (const svc of SERVICES) {
        const e = s.emulators[svc];
        const alive = found.alive[svc];
        emulators[svc] = { ...e, alive, listening: alive ? await probePort(e.port) : false };
      }
      const healthy = SERVICES.every((svc) => (emulators[svc] as { listening: boolean }).listening);
      const out = {
        running: found.dead.length < SERVICES.length,
        healthy,
        stateDir: s.stateDir,
        startedAt: s.startedAt,
        detached: s.detached,
        persist: s.persist,
        endpoints: s.endpoints,
        emulators,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else {
        process.stdout.write(
          `local stack in ${s.stateDir} (started ${s.startedAt}${s.detached ? ", detached" : ""})\n`,
        );
        for (const svc of SERVICES) {
          const e = emulators[svc] as {
            emulator: string;
            pid: number;
            endpoint: string;
            alive: boolean;
            listening: boolean;
            log: string;
          };
          const st = e.listening ? "up" : e.alive ? "not answering" : "DOWN";
          process.stdout.write(
            `  ${svc.padEnd(9)} ${st.padEnd(14)} ${e.endpoint}  ${e.emulator} pid ${e.pid}  log ${e.log}\n`,
          );
        }
      }
      if (!healthy) {
        const bad = SERVICES.filter((svc) => !(emulators[svc] as { listening: boolean }).listening)
          .map((svc) => `${svc} (${s.emulators[svc].emulator}; log ${s.emulators[svc].log})`)
          .join(", ");
        throw new EnvironmentError(
          `local stack in ${s.stateDir} is not healthy: ${bad}; run ferry local down, then ferry local up`,
        );
      }
    });

  local
    .command("env")
    .description('print `export` lines for the running stack: eval "$(ferry local env)"')
    .option("--state-dir <dir>", "state directory")
    .option("--json", "one JSON object of the variables instead")
    .action(async (o: { stateDir?: string; json?: boolean }) => {
      const stateDir = dirOf(o);
      const found = inspectStack(stateDir);
      if (!found || found.dead.length === SERVICES.length) {
        throw new EnvironmentError(`no local stack is running in ${stateDir}; start one with: ferry local up --detach`);
      }
      if (found.dead.length) {
        const names = found.dead.map((e) => `${e.service} (${e.emulator}, log ${e.log})`).join(", ");
        throw new EnvironmentError(
          `the local stack in ${stateDir} is partly down: ${names}; run ferry local down, then ferry local up`,
        );
      }
      const env = { ...localEnv(found.state.endpoints), [STATE_DIR_ENV]: found.state.stateDir };
      process.stdout.write(o.json ? `${JSON.stringify(env)}\n` : formatEnvExports(env));
    });
}

function printEndpoints(endpoints: Record<string, string>, stateDir: string, json?: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ running: true, stateDir, endpoints })}\n`);
    return;
  }
  process.stdout.write(`s3        ${endpoints.s3}\ndynamodb  ${endpoints.dynamodb}\nsqs       ${endpoints.sqs}\n`);
  process.stderr.write(`state dir ${stateDir}\nuse it from a shell: eval "$(ferry local env)"\n`);
}

/** Keeps the stack up until SIGINT/SIGTERM; fails (naming the emulator and its log) if one of them dies. */
function runForeground(stack: LocalStack): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = async (err?: unknown) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await stack.stop();
      if (err) reject(err);
      else {
        process.stderr.write("local stack stopped\n");
        resolve();
      }
    };
    const onSignal = () => void finish();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const timer = setInterval(() => {
      try {
        stack.check();
      } catch (err) {
        void finish(err);
      }
    }, 1000);
  });
}
