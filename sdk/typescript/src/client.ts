import type { SandboxConfig, SandboxInfo, SecretInfo } from "./types.js";
import { Http, type HiveOptions } from "./http.js";
import { Sandbox } from "./sandbox.js";

/** A connection to a Hive Controller. */
export class Hive {
  readonly #http: Http;

  constructor(options: HiveOptions = {}) {
    this.#http = new Http(options);
  }

  get url(): string {
    return this.#http.baseUrl;
  }

  /**
   * The sandbox called `name`, created with `config` if it does not exist. Idempotent: if it
   * exists with a different configuration, a PolicyError says what differs.
   */
  async getOrCreateSandbox(name: string, config: SandboxConfig = {}): Promise<Sandbox> {
    const info = await this.#http.json<SandboxInfo>("PUT", `/api/v1/hiveboxes/${encodeURIComponent(name)}`, { name, ...config });
    return new Sandbox(this.#http, info);
  }

  /** Creates a sandbox (a random name unless `name` is given); a PolicyError if the name is taken. */
  async createSandbox(config: SandboxConfig & { name?: string } = {}): Promise<Sandbox> {
    return new Sandbox(this.#http, await this.#http.json<SandboxInfo>("POST", "/api/v1/hiveboxes", config));
  }

  /** An existing sandbox; NotFoundError if there is none. */
  async getSandbox(name: string): Promise<Sandbox> {
    return new Sandbox(this.#http, await this.#http.json<SandboxInfo>("GET", `/api/v1/hiveboxes/${encodeURIComponent(name)}`));
  }

  async listSandboxes(): Promise<Sandbox[]> {
    const r = await this.#http.json<{ sandboxes: SandboxInfo[] }>("GET", "/api/v1/hiveboxes");
    return r.sandboxes.map((s) => new Sandbox(this.#http, s));
  }

  /**
   * Stores a secret for egress `inject` rules (`${secret:NAME}`), bound to the hosts (names or
   * globs) it may be sent to; TLS only unless `allowHttp`. Without `value`, an existing secret keeps
   * its value and only its hosts change.
   */
  async setSecret(name: string, options: { value?: string; hosts: string[]; allowHttp?: boolean }): Promise<SecretInfo> {
    const body: Record<string, unknown> = { hosts: options.hosts, allow_http: options.allowHttp ?? false };
    if (options.value !== undefined) body.value = options.value;
    return this.#http.json<SecretInfo>("PUT", `/api/v1/secrets/${encodeURIComponent(name)}`, body);
  }

  /** Every secret's name and hosts (never values). */
  async listSecrets(): Promise<SecretInfo[]> {
    return (await this.#http.json<{ secrets: SecretInfo[] }>("GET", "/api/v1/secrets")).secrets;
  }

  async deleteSecret(name: string): Promise<void> {
    await this.#http.json("DELETE", `/api/v1/secrets/${encodeURIComponent(name)}`);
  }
}
