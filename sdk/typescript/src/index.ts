/**
 * Hive — persistent, governed, audited Linux sandboxes for AI agents.
 *
 *   import * as hive from "hive";
 *   const sandbox = await hive.getOrCreateSandbox("my-sandbox", { fs: [{ mount: "/workspace" }] });
 *   const r = await sandbox.exec("python3 -c 'print(1+1)'");
 *
 * Configuration: options, or HIVE_URL / HIVEBOX_API_URL and HIVEBOX_API_KEY (default http://localhost:7070).
 */
import { Hive } from "./client.js";
import type { HiveOptions } from "./http.js";
import type { SandboxConfig } from "./types.js";
import type { Sandbox } from "./sandbox.js";

export { Hive } from "./client.js";
export { Sandbox } from "./sandbox.js";
export { ExecStream, type ExitStatus } from "./exec-stream.js";
export { ApiError, AuthError, NotFoundError, PolicyError } from "./errors.js";
export type { HiveOptions } from "./http.js";
export type * from "./types.js";

let shared: Hive | undefined;
const client = (options?: HiveOptions) => (options ? new Hive(options) : (shared ??= new Hive()));

export const getOrCreateSandbox = (name: string, config: SandboxConfig = {}, options?: HiveOptions): Promise<Sandbox> => client(options).getOrCreateSandbox(name, config);
export const createSandbox = (config: SandboxConfig & { name?: string } = {}, options?: HiveOptions): Promise<Sandbox> => client(options).createSandbox(config);
export const getSandbox = (name: string, options?: HiveOptions): Promise<Sandbox> => client(options).getSandbox(name);
export const listSandboxes = (options?: HiveOptions): Promise<Sandbox[]> => client(options).listSandboxes();
