/**
 * Execution records of the local runner, persisted as one JSON file per execution under
 * <stateDir>/sfn/executions/<state machine>/<execution name>.json so a second process (another CLI invocation)
 * sees them. The file is created with O_EXCL: two starts of the same name race safely, exactly one wins.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  stateMachineName: string;
  name: string;
  status: ExecutionStatus;
  input: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
  /** ISO-8601 */
  startDate: string;
  stopDate?: string;
  /** process running it (a RUNNING record whose process is gone is reported ABORTED) */
  pid: number;
}

export class ExecutionStore {
  constructor(readonly dir: string) {}

  private file(stateMachineName: string, name: string): string {
    return path.join(this.dir, encodeURIComponent(stateMachineName), `${encodeURIComponent(name)}.json`);
  }

  /** Create the record; returns false when an execution of that name already exists. */
  create(rec: ExecutionRecord): boolean {
    const f = this.file(rec.stateMachineName, rec.name);
    mkdirSync(path.dirname(f), { recursive: true });
    try {
      writeFileSync(f, JSON.stringify(rec), { flag: "wx" });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    }
  }

  update(rec: ExecutionRecord): void {
    const f = this.file(rec.stateMachineName, rec.name);
    const tmp = `${f}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec));
    renameSync(tmp, f);
  }

  get(stateMachineName: string, name: string): ExecutionRecord | undefined {
    try {
      return this.check(JSON.parse(readFileSync(this.file(stateMachineName, name), "utf8")) as ExecutionRecord);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  list(stateMachineName?: string): ExecutionRecord[] {
    const machines = stateMachineName ? [encodeURIComponent(stateMachineName)] : safeReaddir(this.dir);
    const out: ExecutionRecord[] = [];
    for (const m of machines) {
      for (const f of safeReaddir(path.join(this.dir, m))) {
        if (!f.endsWith(".json")) continue;
        const rec = this.get(decodeURIComponent(m), decodeURIComponent(f.slice(0, -5)));
        if (rec) out.push(rec);
      }
    }
    return out.sort((a, b) => b.startDate.localeCompare(a.startDate));
  }

  /** A RUNNING record whose process is gone can never finish: report (and persist) it as ABORTED. */
  private check(rec: ExecutionRecord): ExecutionRecord {
    if (rec.status !== "RUNNING" || rec.pid === process.pid || processAlive(rec.pid)) return rec;
    const aborted: ExecutionRecord = {
      ...rec,
      status: "ABORTED",
      error: "States.Runtime",
      cause: `the local process ${rec.pid} running this execution exited before it finished`,
      stopDate: new Date().toISOString(),
    };
    this.update(aborted);
    return aborted;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
