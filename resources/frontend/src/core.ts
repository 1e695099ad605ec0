// The request helper every generated client uses: fetch and nothing else. Each generated client
// makes its own with `createClient`, so two apps' clients on one page keep their own settings.

/** Settings shared by every call; set them once with `configure`, override them per call. */
export interface ClientConfig {
  /** Where the API is, as in `https://crm.example.com`. Default: the current origin. */
  baseUrl: string;
  /** A bearer token, sent as `Authorization: Bearer ...`. */
  token?: string;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** Per-call options. */
export interface RequestOptions extends Partial<ClientConfig> {
  /** Cancels the request. */
  signal?: AbortSignal;
}

/** A response with a declared success status. */
export interface Ok<S extends number, T> {
  status: S;
  data: T;
  error?: undefined;
  response: Response;
}

/** A response with a declared error status. */
export interface Err<S extends number, E> {
  status: S;
  data?: undefined;
  error: E;
  response: Response;
}

/** Thrown by `unwrap` for declared errors, and by every call for statuses the API does not declare. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly response: Response;

  constructor(status: number, body: unknown, response: Response) {
    const detail = typeof body === "object" && body !== null && "detail" in body ? String((body as { detail: unknown }).detail) : response.statusText;
    super(`HTTP ${status}: ${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.response = response;
  }
}

/** The data of a successful result; throws `ApiError` for an error result. */
export function unwrap<T>(result: { status: number; data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || result.data === undefined) {
    throw new ApiError(result.status, result.error, result.response);
  }
  return result.data;
}

/** What a generated function asks of `request`. */
export interface Call {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: object;
  headers?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  /** Statuses the operation declares, and whether each is a success. */
  statuses: Record<number, boolean>;
}

/** One API's settings and the function its generated calls send requests with. */
export interface Client {
  /** Sets the defaults of every call of this client. */
  configure(config: Partial<ClientConfig>): void;
  /** Sends one request and shapes its result by status. */
  request<R>(call: Call, options?: RequestOptions): Promise<R>;
}

function queryString(query: object | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** A client with its own settings, starting from `initial`. */
export function createClient(initial: Partial<ClientConfig> = {}): Client {
  let defaults: ClientConfig = { baseUrl: "", ...initial };
  return {
    configure(config) {
      defaults = { ...defaults, ...config };
    },
    async request<R>(call: Call, options: RequestOptions = {}): Promise<R> {
      const config = { ...defaults, ...options };
      const headers: Record<string, string> = { accept: "application/json, application/problem+json", ...config.headers };
      if (config.token) headers.authorization = `Bearer ${config.token}`;
      for (const [name, value] of Object.entries(call.headers ?? {})) {
        if (value !== undefined) headers[name] = value;
      }
      let body: string | undefined;
      if (call.body !== undefined) {
        headers["content-type"] = call.contentType ?? "application/json";
        body = JSON.stringify(call.body);
      }
      const doFetch = config.fetch ?? fetch;
      const response = await doFetch(`${config.baseUrl}${call.path}${queryString(call.query)}`, {
        method: call.method,
        headers,
        body,
        signal: options.signal,
      });
      const text = await response.text();
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      const success = call.statuses[response.status];
      if (success === undefined) {
        throw new ApiError(response.status, parsed, response);
      }
      return (success ? { status: response.status, data: parsed, response } : { status: response.status, error: parsed, response }) as R;
    },
  };
}
