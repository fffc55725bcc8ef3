/** Every failure the SDK reports: the API's status (0 = no HTTP answer) and its message. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** 404: the sandbox (or file, or running command) does not exist. */
export class NotFoundError extends ApiError {
  constructor(message: string, body?: unknown) {
    super(404, message, body);
    this.name = "NotFoundError";
  }
}

/** 401/403: no or wrong API key. */
export class AuthError extends ApiError {
  constructor(status: number, message: string, body?: unknown) {
    super(status, message, body);
    this.name = "AuthError";
  }
}

/** 409: refused by a rule — e.g. a sandbox exists with a different configuration (the message says what differs). */
export class PolicyError extends ApiError {
  constructor(status: number, message: string, body?: unknown) {
    super(status, message, body);
    this.name = "PolicyError";
  }
}

/** Turns an HTTP error response into the matching typed error. */
export async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  let message = text || response.statusText || `HTTP ${response.status}`;
  try {
    body = JSON.parse(text);
    const error = (body as { error?: unknown }).error;
    if (typeof error === "string") message = error;
  } catch {
    // not JSON: keep the text
  }
  switch (response.status) {
    case 404:
      return new NotFoundError(message, body);
    case 401:
    case 403:
      return new AuthError(response.status, message, body);
    case 409:
      return new PolicyError(response.status, message, body);
    default:
      return new ApiError(response.status, message, body);
  }
}
