import { sstBackend } from "../../host/store/sst-store.js";
import { storeSuite } from "../interop/store-suite.js";

storeSuite(sstBackend);
