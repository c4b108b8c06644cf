/** aws-local-stepfunctions 3 calls Promise.withResolvers (Node 22+); add it on Node 20. Import before the library. */
interface WithResolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const P = Promise as unknown as { withResolvers?: <T>() => WithResolvers<T> };
if (typeof P.withResolvers !== "function") {
  P.withResolvers = <T>(): WithResolvers<T> => {
    let resolve!: WithResolvers<T>["resolve"];
    let reject!: WithResolvers<T>["reject"];
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

export {};
