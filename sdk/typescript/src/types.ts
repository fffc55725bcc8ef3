/** An ACL rule of a workspace: `*` within a segment, `**` across, `?` one character. */
export interface AclRule {
  path: string;
  access: "rw" | "ro" | "deny";
}

/** A governed workspace (SbxFuse): files persist across re-creation; every operation is audited. */
export interface WorkspaceConfig {
  backend?: "local";
  mount: string;
  acls?: AclRule[];
  /** A directory under the operator's --fs-roots, to share one workspace between sandboxes. */
  root?: string;
  /** A local workspace's size, e.g. "2g" (inodes in proportion); default: the server's (10g), or the size an existing workspace has. */
  quota?: string;
}

/**
 * An egress rule (SbxProxy). `host`: a name or glob (`*.pypi.org`); `ports`: omitted = any port for
 * HTTP(S), raw TCP needs the port named; `methods`/`paths` (path globs) narrow it to requests;
 * `inject` sets headers/query values on the way out — `${secret:NAME}` is expanded on the host.
 */
export interface EgressRule {
  host: string;
  methods?: string[];
  paths?: string[];
  ports?: number[];
  inject?: { headers?: Record<string, string>; query?: Record<string, string> };
}

/** Everything optional; the server's defaults apply (512m, 1 cpu, 128 pids, network none, 1 h). */
export interface SandboxConfig {
  image?: string;
  memory?: string;
  /** Size of the sandbox's own files (its writable layer, /tmp included), e.g. "10g"; writes past it fail with ENOSPC. */
  disk?: string;
  cpus?: number;
  pids?: number;
  network?: "none" | "isolated" | "shared";
  timeout?: number;
  env?: Record<string, string>;
  fs?: WorkspaceConfig[];
  /** Implies network "isolated". Deny rules are checked first; nothing matching is denied. */
  egress?: { allow?: EgressRule[]; deny?: EgressRule[] };
  /** Network "shared": sandboxes of one group reach each other as `<name>.hive`. */
  group?: string;
  /** Network "shared": the ports the group's other members may connect to (`<name>.hive:PORT`). Default none. */
  expose?: number[];
}

/** A secret as listed — never its value. `error` is set when it is never injected (stored before secrets had hosts). */
export interface SecretInfo {
  name: string;
  updated_at: string;
  hosts: string[];
  allow_http: boolean;
  error?: string;
}

/** A sandbox as the API describes it. */
export interface SandboxInfo {
  id: string;
  status: "creating" | "running" | "failed" | "destroying" | string;
  image: string;
  created_at: string;
  expires_at: string;
  url: string;
  mcp_url: string;
  network: { mode: string; ip?: string | null } | string;
  error?: string | null;
  /** In-sandbox uid (gid) u is host uid_base + u (gid_base + u); absent without a user namespace. */
  user_namespace?: { uid_base: number; gid_base: number; size: number };
  [key: string]: unknown;
}

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Seconds; the command's whole process group is killed when it passes. */
  timeout?: number;
  /** Written to the command's stdin (then closed). */
  stdin?: string;
  /** Aborting kills the command. */
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  oomKilled: boolean;
  /** The signal that killed the command, if one did. */
  signal?: number | null;
}

export interface FileEntry {
  name: string;
  path: string;
  entry_type: "file" | "directory" | "symlink" | "other";
  size?: number;
}

/** One event of the sandbox's audit log (docs/API.md#events): common fields plus those of its kind. */
export interface SandboxEvent {
  seq: number;
  ts: string;
  sandbox: string;
  kind: string;
  decision?: string;
  [field: string]: unknown;
}

export interface EventsOptions {
  /** Start after this sequence number (default: the beginning). */
  since?: number;
  /** Kind prefixes: "fs", "exec", "net.http", … */
  kinds?: string[];
  decision?: string;
  /** true (default): keep waiting for new events, reconnecting with Last-Event-ID; false: history only. */
  follow?: boolean;
  signal?: AbortSignal;
}
