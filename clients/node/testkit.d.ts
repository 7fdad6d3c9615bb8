// Types of the fleetmock test kit (testkit.mjs). docs/testkits.md has the guide.

/** The request header that scopes a request to one test. */
export declare const TEST_ID_HEADER: 'x-fleetmock-test-id';
/** The repository the kit lives in (where it looks for build directories). */
export declare const REPO_ROOT: string;

/** An admin call the server refused (status, code, param from its error), or a server that would not start. */
export declare class FleetmockError extends Error {
  status: number;
  code: string | null;
  param: string | null;
  body: unknown;
}

export interface StartOptions {
  /** A config object (JSON merge patch over the default fleet, docs/config.md) or a config file path. */
  config?: Record<string, unknown> | string | null;
  /** --seed N. */
  seed?: number | string | null;
  /** --timing; the kit's default is 'instant' (the server's own is 'realistic'). */
  timing?: 'instant' | 'realistic' | null;
  /** More command-line options, after the kit's own (so they win). */
  args?: string[];
  /** Scope reply(), fault(), requests() and `headers` to this test id; `true` generates one. Default: none. */
  testId?: string | boolean | null;
  /** The binary; default findFleetmock(). */
  bin?: string | null;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /** How long to wait for the port file (default 20000). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 5000). */
  stopTimeoutMs?: number;
  /** Bound on each admin request (default 30000). */
  adminTimeoutMs?: number;
}

export interface ToolCallReply {
  name: string;
  arguments: Record<string, unknown>;
}

/** What a scripted turn answers. */
export interface Reply {
  content?: string;
  tool_calls?: ToolCallReply[];
  reasoning?: string;
  json?: unknown;
  finish_reason?: string;
  usage?: { prompt_tokens?: number; cached_tokens?: number; completion_tokens?: number; [k: string]: unknown };
  [k: string]: unknown;
}

/** Conditions a rule matches on; every one optional. test_id is filled in from the handle's testId. */
export interface Match {
  test_id?: string;
  model?: string;
  tier?: 'standard' | 'priority' | 'background' | 'fast';
  api_key?: string;
  route?: string;
  [k: string]: unknown;
}

export type ReplyRule =
  | { match?: Match; reply: Reply; count?: number }
  | { match?: Match; sequence: Reply[]; repeat?: boolean };

export interface FaultRule {
  match?: Match;
  action: { status?: number; stream?: 'error' | 'disconnect' | 'stall'; after_tokens?: number };
  count?: number;
  probability?: number;
}

export interface RequestsFilter {
  /** Default: the handle's testId; null for every test's entries. */
  test_id?: string | null;
  key_id?: string;
  model?: string;
  status?: number;
  since?: number | string;
  limit?: number;
}

/** One journal entry (docs/replies.md); the fields the server sends. */
export type JournalEntry = Record<string, unknown> & { status?: number; model?: string; test_id?: string | null };

export interface Fleetmock {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** url + '/inference/v1': the OpenAI SDK's baseURL. */
  readonly openaiBaseURL: string;
  /** url + '/inference': the Anthropic SDK's baseURL (it appends /v1/messages). */
  readonly anthropicBaseURL: string;
  readonly port: number;
  /** The child's PID (null on a connected handle). */
  readonly pid: number | null;
  readonly binary: string | null;
  readonly testId: string | null;
  /** { 'x-fleetmock-test-id': testId } or {}: the app client's defaultHeaders. */
  readonly headers: Record<string, string>;
  /** The tail of the server's stderr. */
  readonly stderr: string;

  admin<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  state(): Promise<any>;
  /** '*' congests every pool and resolves with every pool's state. */
  congest(pool: string, load: number, share?: number): Promise<any>;
  reply(rule: ReplyRule): Promise<{ id: number; [k: string]: unknown }>;
  replies(): Promise<any[]>;
  clearReplies(id?: number): Promise<any>;
  fault(rule: FaultRule): Promise<{ id: number; [k: string]: unknown }>;
  faults(): Promise<any>;
  clearFaults(id?: number): Promise<any>;
  requests(filter?: RequestsFilter): Promise<JournalEntry[]>;
  clearRequests(): Promise<any>;
  scenario(nameOrBody: string | Record<string, unknown>): Promise<any>;
  stopScenario(): Promise<any>;
  reset(): Promise<{ status: 'reset' }>;
  /** A handle on the same server for another test id (generated when omitted). */
  withTestId(testId?: string): Fleetmock;
  /** SIGTERM, then SIGKILL after stopTimeoutMs; removes the temp dir. Resolves with how it exited. */
  stop(): Promise<{ code: number | null; signal: string | null }>;
}

export declare function startFleetmock(options?: StartOptions): Promise<Fleetmock>;
export declare function connectFleetmock(options: { url: string; testId?: string | boolean | null; adminTimeoutMs?: number }): Fleetmock;
export declare function findFleetmock(options?: { env?: Record<string, string | undefined>; repoRoot?: string }): string;
export declare function newTestId(): string;
