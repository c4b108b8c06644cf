export type { ActiveVersion, DatasetStatus, HostStatus, KvResolver, VersionState, VersionStatus } from "./types.js";
export {
  createKvServer,
  decodeKey,
  type KeyEncoding,
  type KvServer,
  type KvServerOptions,
  kvRequestHandler,
} from "./kv-server.js";
export { StaticResolver } from "./resolver.js";
