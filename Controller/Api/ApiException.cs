namespace Hive.Controller.Api;

/// <summary>An expected API failure: becomes <c>{"error": Message}</c> with <see cref="StatusCode"/>.</summary>
internal sealed class ApiException(int statusCode, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    public static ApiException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    public static ApiException NotFound(string message) => new(StatusCodes.Status404NotFound, message);

    public static ApiException Conflict(string message) => new(StatusCodes.Status409Conflict, message);

    public static ApiException SandboxNotFound(string name) => NotFound($"sandbox '{name}' not found");
}
